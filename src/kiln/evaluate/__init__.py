"""The evaluation library: metrics per task, slices, thresholds and blessing, explanations.

Pure functions on NumPy arrays and Arrow tables: no metadata, no workspace, no trainer (a model
is a predict callable here). Metric names follow BigQuery ML's ``ML.EVALUATE``. The Evaluator
component that puts them on the spine lives in :mod:`kiln.components`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.evaluate._blessing import Blessing, Check, MetricThreshold, bless
    from kiln.evaluate._importance import permutation_importance
    from kiln.evaluate._metrics import (
        CALIBRATION_BINS,
        MAX_CURVE_POINTS,
        SILHOUETTE_SAMPLE_SIZE,
        classification_metrics,
        clustering_metrics,
        regression_metrics,
    )
    from kiln.evaluate._slices import MAX_SLICE_VALUES, sliced_metrics

__all__ = [
    "CALIBRATION_BINS",
    "MAX_CURVE_POINTS",
    "MAX_SLICE_VALUES",
    "SILHOUETTE_SAMPLE_SIZE",
    "Blessing",
    "Check",
    "MetricThreshold",
    "bless",
    "classification_metrics",
    "clustering_metrics",
    "permutation_importance",
    "regression_metrics",
    "sliced_metrics",
]

_EXPORTS = {
    "CALIBRATION_BINS": "kiln.evaluate._metrics",
    "MAX_CURVE_POINTS": "kiln.evaluate._metrics",
    "SILHOUETTE_SAMPLE_SIZE": "kiln.evaluate._metrics",
    "classification_metrics": "kiln.evaluate._metrics",
    "clustering_metrics": "kiln.evaluate._metrics",
    "regression_metrics": "kiln.evaluate._metrics",
    "MAX_SLICE_VALUES": "kiln.evaluate._slices",
    "sliced_metrics": "kiln.evaluate._slices",
    "Blessing": "kiln.evaluate._blessing",
    "Check": "kiln.evaluate._blessing",
    "MetricThreshold": "kiln.evaluate._blessing",
    "bless": "kiln.evaluate._blessing",
    "permutation_importance": "kiln.evaluate._importance",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
