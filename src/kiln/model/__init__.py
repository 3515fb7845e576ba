"""The self-contained model artifact and its one prediction path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.model._evaluate import (
        ComparisonResult,
        EvaluationResult,
        compare_models,
        evaluate_model,
    )
    from kiln.model._explain import explain
    from kiln.model._model import FORMAT, FORMAT_VERSION, LeakageWarning, Model, ModelFormatError
    from kiln.model._report import evaluation_html

__all__ = ["FORMAT", "FORMAT_VERSION", "Model", "ModelFormatError"]

_EXPORTS = {name: "kiln.model._model" for name in __all__}
_EXPORTS["explain"] = "kiln.model._explain"
__all__ += ["explain"]
_EXPORTS["LeakageWarning"] = "kiln.model._model"
__all__ += ["LeakageWarning"]
__all__ += ["ComparisonResult", "EvaluationResult", "compare_models", "evaluate_model"]
_EXPORTS |= {name: "kiln.model._evaluate" for name in __all__[-4:]}
__all__ += ["evaluation_html"]
_EXPORTS["evaluation_html"] = "kiln.model._report"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
