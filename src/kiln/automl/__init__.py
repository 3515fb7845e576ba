"""AutoML: give it a table and a target, get the best model it finds in the time you allow (see
:mod:`kiln.automl._automl` for how it searches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.automl._automl import (
        CV_MAX_ROWS,
        METRICS,
        AutoMLResult,
        AutoMLWarning,
        Progress,
        detect_task,
        fit,
        leaderboard_of,
    )

__all__ = [
    "CV_MAX_ROWS",
    "METRICS",
    "AutoMLResult",
    "AutoMLWarning",
    "Progress",
    "detect_task",
    "fit",
    "leaderboard_of",
]

_EXPORTS = {name: "kiln.automl._automl" for name in __all__}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
