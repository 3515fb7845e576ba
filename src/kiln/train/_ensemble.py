"""Weighted ensembles of trainers: AutoML's final model when several candidates together score
better than the best one alone (greedy ensemble selection, Caruana et al. 2004).

An ensemble's ``X`` is its members' features side by side (see
:class:`kiln.transform.StackedTransform`): member ``i`` reads columns ``columns[i]`` =
``[start, stop)``. ``predict`` is the weighted mean of the members' predictions (regression)
or of their class probabilities (classification). Settings::

    members = [{"model_type": "boosted_tree_classifier", "settings": {...},
                "columns": [0, 12], "weight": 3.0}, ...]

``fit`` trains every member on its columns; :meth:`from_fitted` assembles members already
trained (how AutoML builds one, without training anything twice). Saved as one folder per member
in the member's own safe format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import check_matrix
from kiln.train._contract import Array, Task, Trainer, get_trainer, register_trainer
from kiln.transform import OneHotFeatures

__all__ = ["EnsembleClassifier", "EnsembleRegressor"]


class _Ensemble(Trainer):
    member_task: ClassVar[Task]
    accepts_one_hot_features: ClassVar[bool] = True  # each member gets its columns as it takes them

    def __init__(self, *, members: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.members = [self._check_member(i, m) for i, m in enumerate(members or [])]

    def _check_member(self, i: int, member: Mapping[str, Any]) -> dict[str, Any]:
        mt = self.model_type
        if not isinstance(member, Mapping):
            raise TrainingError(f"{mt}: members[{i}] must be a mapping, got {member!r}")
        unknown = set(member) - {"model_type", "settings", "columns", "weight"}
        if unknown:
            raise TrainingError(f"{mt}: members[{i}] has unknown keys {sorted(unknown)}")
        model_type = member.get("model_type")
        if not isinstance(model_type, str):
            raise TrainingError(f"{mt}: members[{i}] needs a model_type")
        cls = get_trainer(model_type)
        if cls.task != self.member_task or issubclass(cls, _Ensemble):
            raise TrainingError(
                f"{mt}: members[{i}] is a {model_type} ({cls.task}); members must be "
                f"{self.member_task} models and not ensembles"
            )
        columns = member.get("columns")
        if (
            not isinstance(columns, Sequence)
            or len(columns) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in columns)
            or not 0 <= columns[0] < columns[1]
        ):
            raise TrainingError(
                f"{mt}: members[{i}].columns must be [start, stop) with 0 <= start < stop, "
                f"got {columns!r}"
            )
        weight = member.get("weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not weight > 0:
            raise TrainingError(f"{mt}: members[{i}].weight must be a number > 0, got {weight!r}")
        settings = member.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise TrainingError(f"{mt}: members[{i}].settings must be a mapping")
        return {
            "model_type": cls.model_type,
            "settings": dict(settings),
            "columns": [int(columns[0]), int(columns[1])],
            "weight": float(weight),
        }

    @classmethod
    def from_fitted(cls, members: Sequence[tuple[Trainer, tuple[int, int], float]]) -> Self:
        """An ensemble of trainers already fitted: (trainer, its (start, stop) columns, weight)."""
        ensemble = cls(
            members=[
                {
                    "model_type": t.model_type,
                    "settings": t.get_params(),
                    "columns": [start, stop],
                    "weight": w,
                }
                for t, (start, stop), w in members
            ]
        )
        if not members:
            raise TrainingError(f"{cls.model_type}: an ensemble needs at least one member")
        ensemble.members_ = [t for t, _, _ in members]
        ensemble._after_fit()
        ensemble.training_info_ = []
        return ensemble

    def get_params(self) -> dict[str, Any]:
        return {"members": [dict(m) for m in self.members]}

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
        if not self.members:
            raise TrainingError(f"{self.model_type}: an ensemble needs members=[...] to fit")
        Xm = check_matrix(self.model_type, X, allow_nan=True)
        self._check_width(Xm.shape[1])
        fitted: list[Trainer] = []
        for member in self.members:
            start, stop = member["columns"]
            trainer = get_trainer(member["model_type"])(**member["settings"])
            trainer.fit(
                Xm[:, start:stop],
                y,
                X_eval=None if X_eval is None else np.asarray(X_eval)[:, start:stop],
                y_eval=y_eval,
                sample_weight=sample_weight,
                categorical=[c - start for c in categorical if start <= c < stop],
            )
            fitted.append(trainer)
        self.members_ = fitted
        self._after_fit()
        self.training_info_ = []
        return self

    def _after_fit(self) -> None:
        """Checks that need the fitted members (classifiers: the same classes)."""

    def _check_width(self, width: int) -> None:
        needed = max(m["columns"][1] for m in self.members)
        if width < needed:
            raise TrainingError(
                f"{self.model_type}: X has {width} features; the members read up to column {needed}"
            )

    def _outputs(self, X: Array | OneHotFeatures, each: str) -> Array:
        """The weighted mean of each member's ``each`` (``predict`` or ``predict_proba``). From
        :class:`~kiln.transform.OneHotFeatures`, a member that takes them gets its columns as
        codes (a DNN or linear model), the others as a matrix."""
        self._check_fitted("members_")
        Xm = (
            X if isinstance(X, OneHotFeatures) else check_matrix(self.model_type, X, allow_nan=True)
        )
        self._check_width(Xm.shape[1])
        total: Array | None = None
        for trainer, member in zip(self.members_, self.members, strict=True):
            start, stop = member["columns"]
            if not isinstance(Xm, OneHotFeatures):
                part: Any = Xm[:, start:stop]
            elif trainer.accepts_one_hot_features:
                part = Xm.column_range(start, stop)
            else:
                part = Xm.column_range(start, stop).toarray()
            out = np.asarray(getattr(trainer, each)(part), dtype=np.float64)
            total = out * member["weight"] if total is None else total + out * member["weight"]
        assert total is not None
        result: Array = total / sum(m["weight"] for m in self.members)
        return result

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("members_")
        saved = []
        for i, trainer in enumerate(self.members_):
            sub = folder / f"member_{i}"
            sub.mkdir(parents=True, exist_ok=True)
            saved.append(trainer.save(sub))
        return {"model_type": self.model_type, "params": self.get_params(), "members": saved}

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        ensemble = cls(**saved["params"])
        ensemble.members_ = [
            get_trainer(m["model_type"]).load(folder / f"member_{i}", member_saved)
            for i, (m, member_saved) in enumerate(
                zip(ensemble.members, saved["members"], strict=True)
            )
        ]
        ensemble._after_fit()
        ensemble.training_info_ = []
        return ensemble


@register_trainer
class EnsembleRegressor(_Ensemble):
    """The weighted mean of regression members' predictions."""

    model_type: ClassVar[str] = "ensemble_regressor"
    task: ClassVar[Task] = "regression"
    member_task: ClassVar[Task] = "regression"

    def predict(self, X: Array | OneHotFeatures) -> Array:
        return self._outputs(X, "predict")


@register_trainer
class EnsembleClassifier(_Ensemble):
    """The weighted mean of classifier members' class probabilities; every member must know the
    same classes."""

    model_type: ClassVar[str] = "ensemble_classifier"
    task: ClassVar[Task] = "classification"
    member_task: ClassVar[Task] = "classification"

    def _after_fit(self) -> None:
        first = np.asarray(getattr(self.members_[0], "classes_", []))
        for i, trainer in enumerate(self.members_[1:], start=1):
            other = np.asarray(getattr(trainer, "classes_", []))
            if other.shape != first.shape or not bool(np.all(other == first)):
                raise TrainingError(
                    f"{self.model_type}: members[{i}] knows the classes {other.tolist()}, "
                    f"members[0] {first.tolist()}; every member must be trained on the same labels"
                )
        self.classes_ = first

    def predict_proba(self, X: Array | OneHotFeatures) -> Array:
        """Probabilities, rows x classes, columns in ``classes_`` order."""
        return self._outputs(X, "predict_proba")

    def predict(self, X: Array | OneHotFeatures) -> Array:
        proba = self.predict_proba(X)
        result: Array = self.classes_[np.argmax(proba, axis=1)]
        return result
