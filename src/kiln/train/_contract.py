"""The trainer contract: one shape for every model family (scikit-learn's, in Kiln's terms).

- Settings go in ``__init__`` as keyword arguments named as BigQuery ML names its ``OPTIONS``
  (``l1_reg``, ``l2_reg``, ``max_iterations``, ``learn_rate_strategy``, ``num_clusters``…), with
  BigQuery ML's defaults, validated there (one place) with :class:`~kiln.errors.TrainingError`.
- ``fit(X, y, ...)`` learns from a float64 matrix (rows x features, already transformed) and
  returns ``self``; learned state lives in attributes ending in ``_``.
- Iterative trainers append one :class:`IterationInfo` per iteration to ``training_info_`` (what
  BigQuery ML's ``ML.TRAINING_INFO`` returns).
- ``save(folder)`` writes the fitted estimator in a safe format (arrays as ``.npz`` written and read
  with ``allow_pickle=False``, JSON, LightGBM's text model, safetensors) and returns a JSON-able
  dict; ``load(folder, saved)`` rebuilds it without executing any code from the folder.
- Calling ``predict`` before ``fit`` raises :class:`~kiln.errors.NotFittedError`.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np

from kiln.errors import NotFittedError, TrainingError

__all__ = [
    "IterationInfo",
    "Task",
    "Trainer",
    "get_trainer",
    "register_trainer",
    "trainers",
]

Task = Literal["regression", "classification", "clustering", "dimensionality_reduction"]
Array = np.ndarray[Any, np.dtype[Any]]


@dataclass
class IterationInfo:
    """One row of training info: BigQuery ML's ``ML.TRAINING_INFO`` columns."""

    iteration: int
    loss: float
    eval_loss: float | None
    learning_rate: float | None
    duration_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer(abc.ABC):
    """A model family. Subclasses set ``model_type`` (BigQuery ML's name) and ``task``."""

    model_type: ClassVar[str]
    task: ClassVar[Task]

    training_info_: list[IterationInfo]

    @abc.abstractmethod
    def fit(
        self,
        X: Array,
        y: Array | None = None,
        *,
        X_eval: Array | None = None,
        y_eval: Array | None = None,
        sample_weight: Array | None = None,
        categorical: Sequence[int] = (),
    ) -> Self:
        """Learn from ``X`` (float64, rows x features) and ``y``; ``categorical`` lists the columns
        holding category codes (trees use them natively; others may ignore them)."""

    @abc.abstractmethod
    def predict(self, X: Array) -> Array:
        """Regression values, class labels (as in ``y``), cluster ids, or projected components."""

    @abc.abstractmethod
    def get_params(self) -> dict[str, Any]:
        """The settings, as JSON-able values (what ``__init__`` was given, defaults filled)."""

    @abc.abstractmethod
    def save(self, folder: Path) -> dict[str, Any]:
        """Write the fitted estimator into ``folder`` safely; return what ``load`` needs."""

    @classmethod
    @abc.abstractmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        """Rebuild a fitted trainer from ``save``'s files and dict; never executes stored code."""

    def _check_fitted(self, *attributes: str) -> None:
        if not all(hasattr(self, a) for a in attributes):
            raise NotFittedError(
                f"this {self.model_type} trainer is not fitted yet: call fit(X, y) before using it"
            )


_TRAINERS: dict[str, type[Trainer]] = {}

# Modules whose import registers the built-in trainers; imported on the first lookup so that
# ``import kiln.train`` stays light (no LightGBM until a trainer is asked for).
_BUILTIN_MODULES: list[str] = [
    "kiln.train._linear",
    "kiln.train._kmeans",
    "kiln.train._pca",
    "kiln.train._trees",
]
# Built-ins that need an optional extra: model_type -> (extra, the package it installs).
_OPTIONAL_TRAINERS: dict[str, tuple[str, str]] = {
    "dnn_classifier": ("dl", "torch"),
    "dnn_regressor": ("dl", "torch"),
}
# The deep-learning trainers are built in only when PyTorch is installed (extra ``dl``); their
# module imports torch lazily, so finding the package here is enough (nothing heavy is imported).
if importlib.util.find_spec("torch") is not None:
    _BUILTIN_MODULES.append("kiln.train.dl._dnn")
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    _builtins_loaded = True


def register_trainer(cls: type[Trainer]) -> type[Trainer]:
    """Class decorator: make a trainer available by its ``model_type`` (the DIY option too)."""
    existing = _TRAINERS.get(cls.model_type)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        owner = f"{existing.__module__}.{existing.__qualname__}"
        raise TrainingError(f"model_type {cls.model_type!r} is taken by {owner}")
    _TRAINERS[cls.model_type] = cls
    return cls


def get_trainer(model_type: str) -> type[Trainer]:
    _load_builtins()
    try:
        return _TRAINERS[model_type.lower()]
    except KeyError:
        if model_type.lower() in _OPTIONAL_TRAINERS:
            extra, package = _OPTIONAL_TRAINERS[model_type.lower()]
            raise TrainingError(
                f"model_type {model_type!r} needs {package}, which is not installed:"
                f" install kiln[{extra}] (pip install 'kiln[{extra}]')"
            ) from None
        known = ", ".join(sorted(_TRAINERS)) or "none"
        raise TrainingError(f"unknown model_type {model_type!r}; known: {known}") from None


def trainers() -> dict[str, type[Trainer]]:
    _load_builtins()
    return dict(_TRAINERS)
