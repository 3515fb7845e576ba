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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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


IterationListener = Callable[["Trainer", IterationInfo], None]
_LISTENERS: ContextVar[tuple[IterationListener, ...]] = ContextVar(
    "kiln_iteration_listeners", default=()
)


@contextmanager
def iteration_listener(listener: IterationListener) -> Iterator[None]:
    """Within this block, ``listener(trainer, info)`` runs after each iteration any trainer
    records (in this thread): a tuner watches the loss this way, and prunes a trial by raising
    from the listener (the exception leaves ``fit``); raising :class:`StopTraining` instead ends
    training early with the model kept."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


class StopTraining(Exception):
    """Raised by an iteration listener to end training now and keep the model as it stands
    (an AutoML search out of time); any other exception abandons the fit."""


def record_iteration(trainer: Trainer, rows: list[IterationInfo], info: IterationInfo) -> bool:
    """Append ``info`` to ``rows`` (the trainer's ``training_info_``) and tell the listeners:
    how every iterative trainer records an iteration. True when a listener raised
    :class:`StopTraining`: the trainer then stops, its model fitted as it is."""
    rows.append(info)
    try:
        for listener in _LISTENERS.get():
            listener(trainer, info)
    except StopTraining:
        return True
    return False


class Trainer(abc.ABC):
    """A model family. Subclasses set ``model_type`` (BigQuery ML's name) and ``task``."""

    model_type: ClassVar[str]
    task: ClassVar[Task]
    accepts_one_hot_features: ClassVar[bool] = False
    """Whether ``predict`` (and ``predict_proba``) also take a
    :class:`kiln.transform.OneHotFeatures`, the one-hot blocks held as codes (linear models,
    DNNs, and ensembles, which hand each member its columns as it takes them)."""
    fits_one_hot_features: ClassVar[bool] = False
    """Whether ``fit`` also takes :class:`kiln.transform.OneHotFeatures` (for ``X`` and
    ``X_eval``): :meth:`kiln.Model.fit` then never builds the dense matrix, a column per
    category (the DNNs)."""
    predicts_in_native_code: ClassVar[bool] = False
    """Whether ``predict`` spends its time in a native library that releases the GIL (LightGBM,
    PyTorch), so that :meth:`kiln.Model.predict` gains by transforming the next chunk
    on a second thread meanwhile. Left False where prediction is cheap beside the transform (the
    linear models, k-means, PCA) or holds the GIL (CatBoost): there the two threads would only
    contend."""

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

    def _forget(self, *attributes: str) -> None:
        """Drop learned ``attributes`` at the start of ``fit``: a failed fit leaves the trainer
        unfitted (:meth:`_check_fitted` then says so), not holding a previous fit's state."""
        for name in attributes:
            self.__dict__.pop(name, None)

    def _check_fitted(self, *attributes: str) -> None:
        if not all(hasattr(self, a) for a in attributes):
            raise NotFittedError(
                f"this {self.model_type} trainer is not fitted yet: call fit(X, y) before using it"
            )


_TRAINERS: dict[str, type[Trainer]] = {}

# Where each built-in trainer lives: its module is imported on the first lookup of its
# model_type, so that loading a linear model imports neither LightGBM nor the deep-learning code.
_BUILTINS: dict[str, str] = {
    "linear_reg": "kiln.train._linear",
    "logistic_reg": "kiln.train._linear",
    "kmeans": "kiln.train._kmeans",
    "pca": "kiln.train._pca",
    "boosted_tree_classifier": "kiln.train._trees",
    "boosted_tree_regressor": "kiln.train._trees",
    "random_forest_classifier": "kiln.train._trees",
    "random_forest_regressor": "kiln.train._trees",
    "dnn_classifier": "kiln.train.dl._dnn",
    "dnn_regressor": "kiln.train.dl._dnn",
    "catboost_classifier": "kiln.train._catboost",
    "catboost_regressor": "kiln.train._catboost",
    "ensemble_classifier": "kiln.train._ensemble",
    "ensemble_regressor": "kiln.train._ensemble",
}
# Built-ins that need an optional extra: model_type -> (extra, the package it installs).
_OPTIONAL_TRAINERS: dict[str, tuple[str, str]] = {
    "dnn_classifier": ("dl", "torch"),
    "dnn_regressor": ("dl", "torch"),
    "catboost_classifier": ("catboost", "catboost"),
    "catboost_regressor": ("catboost", "catboost"),
}


def _load_builtin(model_type: str) -> None:
    """Import the module that registers ``model_type``, when it is a built-in that can load: the
    deep-learning trainers only with PyTorch installed (their module imports it lazily, so
    finding the package is enough)."""
    module = _BUILTINS.get(model_type)
    if module is None or model_type in _TRAINERS:
        return
    optional = _OPTIONAL_TRAINERS.get(model_type)
    if optional is not None and importlib.util.find_spec(optional[1]) is None:
        return
    importlib.import_module(module)


def register_trainer(cls: type[Trainer]) -> type[Trainer]:
    """Class decorator: make a trainer available by its ``model_type`` (the DIY option too)."""
    existing = _TRAINERS.get(cls.model_type)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        owner = f"{existing.__module__}.{existing.__qualname__}"
        raise TrainingError(f"model_type {cls.model_type!r} is taken by {owner}")
    _TRAINERS[cls.model_type] = cls
    return cls


def get_trainer(model_type: str) -> type[Trainer]:
    _load_builtin(model_type.lower())
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
    """Every registered trainer by ``model_type``: the built-ins that can load, and the DIY ones."""
    for model_type in _BUILTINS:
        _load_builtin(model_type)
    return dict(_TRAINERS)
