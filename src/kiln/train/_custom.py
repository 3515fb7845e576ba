"""The DIY option: a user's own training code behind the trainer contract.

Two ways, both registered by ``model_type`` and found by :func:`~kiln.train.get_trainer` like the
built-in families:

1. Four functions, no class (:func:`custom_trainer`)::

       def fit(X, y, alpha=1.0):                    # settings arrive as keyword arguments
           return {"coef": np.linalg.lstsq(X, y, rcond=None)[0] * alpha}

       def predict(state, X):
           return X @ state["coef"]

       def save(state, folder):                     # write safe files; return a JSON-able dict
           np.save(folder / "coef.npy", state["coef"], allow_pickle=False)
           return {}

       def load(folder, saved):
           return {"coef": np.load(folder / "coef.npy", allow_pickle=False)}

       custom_trainer("my_ols", "regression", fit=fit, predict=predict, save=save, load=load,
                      defaults={"alpha": 1.0})
       get_trainer("my_ols")(alpha=0.5).fit(X, y).predict(X)

   ``fit`` also receives ``X_eval``, ``y_eval``, ``sample_weight`` and ``categorical`` when its
   signature names them (or takes ``**kwargs``). It returns the fitted *state*, any object that
   ``predict`` and ``save`` understand. If the state has a ``training_info`` list of
   :class:`~kiln.train.IterationInfo`, it becomes the trainer's ``training_info_``.

2. A subclass of :class:`~kiln.train.Trainer` decorated with :func:`~kiln.train.register_trainer`,
   setting ``model_type`` and ``task`` and implementing ``fit``, ``predict``, ``get_params``,
   ``save`` and ``load`` (see :mod:`kiln.train._contract`): the way to go for anything beyond
   four functions.

Either way, ``save`` must write a safe format (``np.save(..., allow_pickle=False)``, JSON, a
library's own text or safetensors format): Kiln loads models without executing stored code and
never uses pickle; a DIY trainer is trusted code of the user's, its files are data.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._contract import IterationInfo, Task, Trainer, register_trainer, trainers

__all__ = ["custom_trainer"]

Array = np.ndarray[Any, np.dtype[Any]]
FitFn = Callable[..., Any]
PredictFn = Callable[[Any, Array], Array]
SaveFn = Callable[[Any, Path], Mapping[str, Any]]
LoadFn = Callable[[Path, Mapping[str, Any]], Any]

_TASKS = ("regression", "classification", "clustering", "dimensionality_reduction")
_FIT_EXTRAS = ("X_eval", "y_eval", "sample_weight", "categorical")
_MODEL_TYPE = re.compile(r"[a-z][a-z0-9_]*")


class _CustomTrainer(Trainer):
    """Base of the classes :func:`custom_trainer` makes; the functions are class attributes."""

    _fit_fn: ClassVar[FitFn]
    _predict_fn: ClassVar[PredictFn]
    _save_fn: ClassVar[SaveFn]
    _load_fn: ClassVar[LoadFn]
    _defaults: ClassVar[dict[str, Any]]

    state_: Any

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self._defaults))
        if unknown:
            known = ", ".join(sorted(self._defaults)) or "none"
            raise TrainingError(
                f"{self.model_type}: unknown setting(s) {', '.join(unknown)}; known: {known}"
            )
        self._params = {**self._defaults, **settings}
        try:
            json.dumps(self._params)
        except (TypeError, ValueError) as exc:
            raise TrainingError(
                f"{self.model_type}: settings must be JSON values (numbers, strings, lists,"
                f" dicts): {exc}"
            ) from exc
        self.training_info_ = []

    def get_params(self) -> dict[str, Any]:
        return dict(self._params)

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
        fn = type(self)._fit_fn
        extras: dict[str, Any] = {
            "X_eval": X_eval,
            "y_eval": y_eval,
            "sample_weight": sample_weight,
            "categorical": tuple(categorical),
        }
        accepted = _accepted_keywords(fn)
        if accepted is not None:
            extras = {k: v for k, v in extras.items() if k in accepted}
        try:
            state = fn(X, y, **self._params, **extras)
        except TrainingError:
            raise
        except Exception as exc:
            raise TrainingError(
                f"{self.model_type}: the custom fit function failed: {type(exc).__name__}: {exc}"
            ) from exc
        self.state_ = state
        info = getattr(state, "training_info", None)
        self.training_info_ = list(info) if isinstance(info, list) else []
        return self

    def predict(self, X: Array) -> Array:
        self._check_fitted("state_")
        return np.asarray(type(self)._predict_fn(self.state_, X))

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("state_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        saved = dict(type(self)._save_fn(self.state_, folder))
        return {
            "model_type": self.model_type,
            "params": self.get_params(),
            "state": saved,
            "training_info": [row.to_dict() for row in self.training_info_],
        }

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        trainer = cls(**saved["params"])
        trainer.state_ = cls._load_fn(Path(folder), saved["state"])
        trainer.training_info_ = [IterationInfo(**row) for row in saved.get("training_info", [])]
        return trainer


def _accepted_keywords(fn: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``fn`` accepts, or None when it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def custom_trainer(
    model_type: str,
    task: Task,
    *,
    fit: FitFn,
    predict: PredictFn,
    save: SaveFn,
    load: LoadFn,
    defaults: Mapping[str, Any] | None = None,
) -> type[Trainer]:
    """Register a trainer made of four functions (see the module docstring) and return its class.

    ``defaults`` declares the settings ``fit`` takes (name → default); any other setting is a
    :class:`~kiln.errors.TrainingError`. Registering the same ``model_type`` again replaces the
    earlier DIY trainer; a built-in's ``model_type`` cannot be taken.
    """
    if not isinstance(model_type, str) or not _MODEL_TYPE.fullmatch(model_type):
        raise TrainingError(
            f"custom trainer model_type {model_type!r} must be lower-case letters, digits and"
            " underscores, starting with a letter"
        )
    if task not in _TASKS:
        raise TrainingError(
            f"custom trainer {model_type}: task {task!r} is not one of {', '.join(_TASKS)}"
        )
    for name, fn in (("fit", fit), ("predict", predict), ("save", save), ("load", load)):
        if not callable(fn):
            raise TrainingError(f"custom trainer {model_type}: {name} must be a function")
    trainers()  # registers the built-ins first, so that their model_types cannot be taken
    class_name = "".join(part.title() for part in model_type.split("_")) + "Trainer"
    namespace: dict[str, Any] = {
        "model_type": model_type,
        "task": task,
        "_fit_fn": staticmethod(fit),
        "_predict_fn": staticmethod(predict),
        "_save_fn": staticmethod(save),
        "_load_fn": staticmethod(load),
        "_defaults": dict(defaults or {}),
        "__module__": __name__,
        "__qualname__": f"custom_trainer.{class_name}",
        "__doc__": f"DIY trainer {model_type!r} ({task}) made by kiln.train.custom_trainer.",
    }
    cls = type(class_name, (_CustomTrainer,), namespace)
    return register_trainer(cls)
