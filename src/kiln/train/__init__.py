"""Trainers: one contract for every model family (see :mod:`kiln.train._contract`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.train._catboost import CatBoostClassifier, CatBoostRegressor
    from kiln.train._contract import (
        IterationInfo,
        IterationListener,
        StopTraining,
        Task,
        Trainer,
        get_trainer,
        iteration_listener,
        record_iteration,
        register_trainer,
        trainers,
    )
    from kiln.train._custom import custom_trainer
    from kiln.train._ensemble import EnsembleClassifier, EnsembleRegressor
    from kiln.train._kmeans import KMeansTrainer
    from kiln.train._linear import LinearRegTrainer, LogisticRegTrainer
    from kiln.train._pca import PCATrainer
    from kiln.train._trees import (
        BoostedTreeClassifier,
        BoostedTreeRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

__all__ = [
    "IterationInfo",
    "IterationListener",
    "StopTraining",
    "Task",
    "Trainer",
    "get_trainer",
    "iteration_listener",
    "record_iteration",
    "register_trainer",
    "trainers",
]

_EXPORTS = {name: "kiln.train._contract" for name in __all__}
_EXPORTS |= {
    "BoostedTreeClassifier": "kiln.train._trees",
    "BoostedTreeRegressor": "kiln.train._trees",
    "RandomForestClassifier": "kiln.train._trees",
    "RandomForestRegressor": "kiln.train._trees",
    "custom_trainer": "kiln.train._custom",
    "EnsembleClassifier": "kiln.train._ensemble",
    "EnsembleRegressor": "kiln.train._ensemble",
}
__all__ += [
    "BoostedTreeClassifier",
    "BoostedTreeRegressor",
    "EnsembleClassifier",
    "EnsembleRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "custom_trainer",
]
_EXPORTS |= {
    "LinearRegTrainer": "kiln.train._linear",
    "LogisticRegTrainer": "kiln.train._linear",
    "KMeansTrainer": "kiln.train._kmeans",
    "PCATrainer": "kiln.train._pca",
}
__all__ += ["KMeansTrainer", "LinearRegTrainer", "LogisticRegTrainer", "PCATrainer"]
_EXPORTS |= {  # extra catboost
    "CatBoostClassifier": "kiln.train._catboost",
    "CatBoostRegressor": "kiln.train._catboost",
}
__all__ += ["CatBoostClassifier", "CatBoostRegressor"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
