"""The standard components, on the spine: data (ExampleGen, StatisticsGen, SchemaGen,
ImportSchema, ExampleValidator); training, evaluation and pushing come with their issues."""

from __future__ import annotations

from kiln.components._data import (
    DataValidationError,
    ExampleGen,
    ExampleValidator,
    ImportSchema,
    SchemaGen,
    StatisticsGen,
)

__all__ = [
    "DataValidationError",
    "ExampleGen",
    "ExampleValidator",
    "ImportSchema",
    "SchemaGen",
    "StatisticsGen",
]
