"""The Tuner component (TFX's name and role): hyper-parameter search for the Trainer.

``Tuner`` runs :func:`kiln.tune.tune` on the train split through the Transform step's fitted
graph, scoring trials on the eval split (or, with ``eval_split=""``, on a deterministic part of
the train split), and emits a ``HyperParameters`` artifact: the best settings and the trial
table. Feed it to ``Trainer(..., hyperparameters=tuner.output)``, whose settings the best ones
then override.

``search_space`` is JSON: ``{"l2_reg": {"range": [0, 10]}, "max_tree_depth": {"candidates":
[4, 6, 8]}}`` (``"log": true`` on a range for a log scale); left out, the model type's default
search space (BigQuery ML's).
"""

from __future__ import annotations

from typing import Any

from kiln.artifacts import Dataset, HyperParameters, TransformGraph
from kiln.errors import TrainingError
from kiln.orchestration import component

__all__ = ["Tuner"]


@component(name="Tuner")
def Tuner(
    dataset: Dataset,
    transform: TransformGraph,
    model_type: str,
    label: str = "",
    search_space: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    objective: str = "",
    num_trials: int | None = None,
    time_budget: float | None = None,
    algorithm: str = "tpe",
    num_parallel_trials: int = 1,
    seed: int = 0,
    prune: bool = True,
    train_split: str = "train",
    eval_split: str = "eval",
) -> HyperParameters:
    """Search ``model_type``'s settings on ``train_split``, scored on ``eval_split``.

    ``settings`` are fixed for every trial; ``objective`` is a metric name of
    :mod:`kiln.evaluate` (``""``: BigQuery ML's default for the task); ``num_trials`` and
    ``time_budget`` (seconds) bound the search (neither: 10 trials); ``algorithm`` is ``tpe``,
    ``random`` or ``grid``; ``num_parallel_trials`` > 1 runs trials in worker processes.
    """
    from kiln.tune import tune

    graph = transform.read()
    if label and label in graph.input_columns:
        raise TrainingError(
            f"the transform takes the label column {label!r} as a feature, which would leak the "
            f"answer into the model; fit the Transform step with label={label!r}"
        )
    result = tune(
        dataset.split(train_split),
        model_type=model_type,
        label=label or None,
        search_space=search_space,
        settings=settings,
        objective=objective or None,
        num_trials=num_trials,
        time_budget=time_budget,
        algorithm=algorithm,
        num_parallel_trials=num_parallel_trials,
        eval_table=dataset.split(eval_split) if eval_split else None,
        seed=seed,
        prune=prune,
        fitted_transform=graph,
    )
    return HyperParameters({**result.summary(), "trials": result.trials})
