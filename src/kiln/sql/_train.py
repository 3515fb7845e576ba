"""Training a ``CREATE MODEL`` statement's model from its resolved options: a plain fit, a tuning
run (``NUM_TRIALS`` > 1) or an AutoML search (``automl_*``), each an ordinary Kiln
:class:`~kiln.model.Model`.

``on_iteration`` sees every :class:`~kiln.train.IterationInfo` the trainers record in this
process: the fit's; with tuning, every sequential trial's and the best settings' refit (trials
in worker processes, ``max_parallel_trials`` > 1, are not seen); with AutoML, every candidate's.

With tuning, the trial table has BigQuery ML's ``ML.TRIAL_INFO`` columns: ``trial_id`` (from 1),
``hyperparameters`` and ``hparam_tuning_evaluation_metrics`` (JSON text: the tuned settings; the
objective's value on the evaluation rows), ``training_loss`` and ``eval_loss`` (the last
iteration's, known for the optimal trial: its refit), ``status`` (``SUCCEEDED``, ``FAILED`` or
``STOPPED_EARLY`` when pruned), ``error_message`` and ``is_optimal``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from kiln.errors import DataError, SqlError, TrainingError
from kiln.model import Model
from kiln.sql._options import ResolvedOptions
from kiln.train import IterationInfo, Trainer, iteration_listener

__all__ = ["TRIAL_INFO_SCHEMA", "TrainResult", "train"]

TRIAL_INFO_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.int64(), nullable=False),
        pa.field("hyperparameters", pa.string(), nullable=False),
        pa.field("hparam_tuning_evaluation_metrics", pa.string()),
        pa.field("training_loss", pa.float64()),
        pa.field("eval_loss", pa.float64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_message", pa.string()),
        pa.field("is_optimal", pa.bool_(), nullable=False),
    ]
)
_STATUS = {"COMPLETE": "SUCCEEDED", "FAILED": "FAILED", "PRUNED": "STOPPED_EARLY"}


@dataclass
class TrainResult:
    """The trained model, and what tuning or AutoML found on the way."""

    model: Model
    trials: pa.Table | None = None  # ML.TRIAL_INFO rows, when tuning ran
    leaderboard: pa.Table | None = None  # AutoML's leaderboard, when AutoML ran


def train(
    resolved: ResolvedOptions,
    train: pa.Table,
    eval: pa.Table | None,
    *,
    transform: Any | None = None,
    on_iteration: Callable[[IterationInfo], None] | None = None,
) -> TrainResult:
    """Train ``resolved``'s model on ``train`` (``eval``: the evaluation rows, or None).

    ``transform``: None for the model family's automatic preprocessing, else a
    :class:`kiln.transform.TransformGraph` (the TRANSFORM clause) fitted on ``train``. The
    trainers' errors come back as :class:`~kiln.errors.SqlError` naming the model type."""

    def listener(trainer: Trainer, info: IterationInfo) -> None:
        if on_iteration is not None:
            on_iteration(info)

    try:
        with iteration_listener(listener):
            if resolved.automl is not None:
                return _automl(resolved, train, eval, transform)
            if resolved.tuning is not None:
                return _tune(resolved, train, eval, transform)
            assert resolved.trainer_type is not None
            model = Model.fit(
                train,
                model_type=resolved.trainer_type,
                label=resolved.label,
                settings=dict(resolved.settings),
                transform=transform,
                eval_table=eval,
            )
    except (TrainingError, DataError) as e:
        raise SqlError(f"CREATE MODEL ({resolved.model_type}) failed to train: {e}") from e
    return TrainResult(model)


def _tune(
    resolved: ResolvedOptions, train: pa.Table, eval: pa.Table | None, transform: Any | None
) -> TrainResult:
    from kiln.tune import tune

    assert resolved.tuning is not None
    assert resolved.trainer_type is not None
    tuning = resolved.tuning
    space = tuning["space"]
    fitted = None if transform is None else transform.fit(train)
    result = tune(
        train,
        model_type=resolved.trainer_type,
        label=resolved.label,
        search_space=space,
        settings={k: v for k, v in resolved.settings.items() if k not in space},
        objective=tuning["objective"],
        num_trials=tuning["num_trials"],
        algorithm=tuning["algorithm"],
        num_parallel_trials=tuning["max_parallel_trials"],
        eval_table=eval,
        fitted_transform=fitted,
    )
    history = getattr(result.best_model.trainer, "training_info_", [])
    last = history[-1] if history else None
    rows = []
    for trial in result.trials.to_pylist():
        optimal = bool(trial["is_optimal"])
        score = trial["score"]
        rows.append(
            {
                "trial_id": int(trial["trial_id"]) + 1,
                "hyperparameters": trial["params"],
                "hparam_tuning_evaluation_metrics": (
                    None if score is None else json.dumps({result.objective: score})
                ),
                "training_loss": last.loss if optimal and last is not None else None,
                "eval_loss": last.eval_loss if optimal and last is not None else None,
                "status": _STATUS.get(trial["state"], trial["state"]),
                "error_message": trial["error"],
                "is_optimal": optimal,
            }
        )
    trials = pa.Table.from_pylist(rows, schema=TRIAL_INFO_SCHEMA)
    return TrainResult(result.best_model, trials=trials)


def _automl(
    resolved: ResolvedOptions, train: pa.Table, eval: pa.Table | None, transform: Any | None
) -> TrainResult:
    import pyarrow.compute as pc

    from kiln import automl

    assert resolved.automl is not None
    assert resolved.label is not None
    if transform is not None:
        raise SqlError(
            f"TRANSFORM is not supported with model_type '{resolved.model_type}' yet: AutoML "
            "chooses each candidate's preprocessing; drop the TRANSFORM clause"
        )
    table = train if eval is None else pa.concat_tables([train, eval], promote_options="default")
    task = "regression"
    if resolved.automl["task"] == "classification":
        classes = len(pc.unique(pc.drop_null(table[resolved.label])))
        task = "binary" if classes == 2 else "multiclass"
    result = automl.fit(
        table,
        resolved.label,
        task=task,
        metric=resolved.automl["metric"],
        time_budget=resolved.automl["time_budget"],
    )
    return TrainResult(result.model, leaderboard=result.leaderboard)
