"""The self-contained model artifact, its one prediction path (and batch prediction over files),
and what is computed from it: evaluation, comparison, explanations and the evaluation report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.model._batch import PREDICTION_FORMATS, PredictionSummary, predict_batches
    from kiln.model._evaluate import (
        ComparisonResult,
        EvaluationResult,
        compare_models,
        evaluate_model,
    )
    from kiln.model._explain import explain
    from kiln.model._model import (
        FORMAT,
        FORMAT_VERSION,
        LeakageWarning,
        Model,
        ModelFormatError,
        preprocessing_for,
    )
    from kiln.model._onnx import export_onnx
    from kiln.model._report import evaluation_html

_MODULES = {
    "kiln.model._model": [
        "FORMAT",
        "FORMAT_VERSION",
        "LeakageWarning",
        "Model",
        "ModelFormatError",
        "preprocessing_for",
    ],
    "kiln.model._batch": ["PREDICTION_FORMATS", "PredictionSummary", "predict_batches"],
    "kiln.model._evaluate": [
        "ComparisonResult",
        "EvaluationResult",
        "compare_models",
        "evaluate_model",
    ],
    "kiln.model._explain": ["explain"],
    "kiln.model._onnx": ["export_onnx"],
    "kiln.model._report": ["evaluation_html"],
}
__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PREDICTION_FORMATS",
    "ComparisonResult",
    "EvaluationResult",
    "LeakageWarning",
    "Model",
    "ModelFormatError",
    "PredictionSummary",
    "compare_models",
    "evaluate_model",
    "evaluation_html",
    "explain",
    "export_onnx",
    "predict_batches",
    "preprocessing_for",
]

_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
