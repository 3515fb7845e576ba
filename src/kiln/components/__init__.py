"""The standard components, on the spine: data (ExampleGen, StatisticsGen, SchemaGen,
ImportSchema, ExampleValidator, DriftCheck); training (Transform, Tuner, Trainer, AutoML);
evaluation (Evaluator, EvaluatorWithBaseline, ChampionEvaluator); deployment (InfraValidator,
Pusher, BulkInferrer)."""

from __future__ import annotations

from kiln.components._data import (
    DataValidationError,
    ExampleGen,
    ExampleValidator,
    ImportSchema,
    SchemaGen,
    StatisticsGen,
)
from kiln.components._deploy import (
    AutoML,
    BulkInferrer,
    ChampionEvaluator,
    DriftCheck,
    InfraValidator,
    Pusher,
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
    "AutoML",
    "BulkInferrer",
    "ChampionEvaluator",
    "DataValidationError",
    "DriftCheck",
    "Evaluator",
    "EvaluatorWithBaseline",
    "ExampleGen",
    "ExampleValidator",
    "ImportSchema",
    "InfraValidator",
    "ModelNotBlessedError",
    "Pusher",
    "SchemaGen",
    "StatisticsGen",
    "Trainer",
    "Transform",
    "Tuner",
]
