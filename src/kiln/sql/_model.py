"""What the parts of ``kiln sql`` hand each other: a model as SQL sees it, and the option values
that ``OPTIONS(...)`` can hold beyond plain literals (``HPARAM_RANGE``, ``HPARAM_CANDIDATES``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.model import Model

__all__ = ["HParamCandidates", "HParamRange", "SqlModel"]


@dataclass(frozen=True)
class HParamRange:
    """``HPARAM_RANGE(low, high)`` in OPTIONS: a continuous or integer range to tune over."""

    low: float
    high: float


@dataclass(frozen=True)
class HParamCandidates:
    """``HPARAM_CANDIDATES([...])`` in OPTIONS: the discrete values to tune over."""

    values: tuple[Any, ...]


@dataclass
class SqlModel:
    """A registered model as the ``ML.*`` functions see it.

    ``info`` is ``model.info["sql"]``: ``{"model_type": BigQuery's model_type (lower case, e.g.
    "automl_regressor"), "options": {name: effective value, defaults filled}, "statement": the
    CREATE MODEL text, "feature_info": [...], "evaluation": [...], ...}`` written at CREATE MODEL.
    """

    name: str  # the registry name: "dataset.model"
    version: int
    model: Model
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        return str(self.info.get("model_type") or self.model.trainer.model_type)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.info.get("options") or {})

    @property
    def label(self) -> str | None:
        return self.model.label
