"""The standard components, on the spine: data (ExampleGen, StatisticsGen, SchemaGen,
ImportSchema, ExampleValidator); training (Transform, Tuner, Trainer) and evaluation (Evaluator,
EvaluatorWithBaseline); pushing comes with its issue."""

from __future__ import annotations

from kiln.components._data import (
    DataValidationError,
    ExampleGen,
    ExampleValidator,
    ImportSchema,
    SchemaGen,
    StatisticsGen,
)
from kiln.components._training import (
    Evaluator,
    EvaluatorWithBaseline,
    ModelNotBlessedError,
    Trainer,
    Transform,
)
from kiln.components._tune import Tuner

__all__ = [
    "DataValidationError",
    "Evaluator",
    "EvaluatorWithBaseline",
    "ExampleGen",
    "ExampleValidator",
    "ImportSchema",
    "ModelNotBlessedError",
    "SchemaGen",
    "StatisticsGen",
    "Trainer",
    "Transform",
    "Tuner",
]
