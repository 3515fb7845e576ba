"""One trial: fit the model with one set of settings on the training rows, report each
iteration's loss, score the objective on the evaluation rows. The same function runs in the
tuner's process (one trial at a time) and in its worker processes (parallel trials)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kiln.errors import TrainingError
from kiln.model import Model, evaluate_model
from kiln.train import IterationInfo, Trainer, iteration_listener
from kiln.transform import FittedTransform

__all__ = ["Report", "TrialData", "fit", "run_trial"]

Report = Callable[[int, float], None]
"""``report(step, loss)`` after each iteration; it raises to stop (prune) the trial."""


@dataclass
class TrialData:
    """What every trial of one tuning run shares."""

    train: pa.Table
    eval: pa.Table
    model_type: str
    label: str | None
    objective: str
    fitted_transform: FittedTransform | None = None
    trainer_module: str = ""
    """The module that registers the trainer: a worker imports it (a DIY trainer's included)."""


def fit(data: TrialData, settings: dict[str, Any]) -> Model:
    return Model.fit(
        data.train,
        model_type=data.model_type,
        label=data.label,
        settings=settings,
        eval_table=data.eval,
        fitted_transform=data.fitted_transform,
    )


def run_trial(data: TrialData, settings: dict[str, Any], report: Report | None) -> float:
    """The objective of a model fitted with ``settings``: an error when the fit fails or the
    metric is undefined on the evaluation rows; whatever ``report`` raises to prune.

    ``report`` gets the evaluation loss of each iteration (the training loss when the trainer
    has none), not negated: the caller turns it the way its pruner compares. The trainer's and
    transform's warnings are not repeated for every trial (the best model's refit shows them).
    """

    def listener(trainer: Trainer, info: IterationInfo) -> None:
        value = info.eval_loss if info.eval_loss is not None else info.loss
        if report is not None and value is not None and math.isfinite(value):
            report(int(info.iteration), float(value))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with iteration_listener(listener):
            model = fit(data, settings)
        metrics = evaluate_model(model, data.eval, importance=False).metrics
    score = metrics.get(data.objective)
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        notes = "; ".join(str(n) for n in metrics.get("notes", []))
        raise TrainingError(
            f"the objective {data.objective} is undefined on the evaluation rows"
            + (f" ({notes})" if notes else "")
        )
    return float(score)
