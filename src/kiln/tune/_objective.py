"""Tuning objectives: the metric a trial is scored on, as :mod:`kiln.evaluate` names it, and
whether higher or lower is better.

The defaults are BigQuery ML's ``HPARAM_TUNING_OBJECTIVES`` defaults: ``r2_score`` for
regression, ``roc_auc`` for classification (the macro one-vs-rest average with more than two
classes), ``davies_bouldin_index`` for k-means. BigQuery ML's upper-case names
(``'ROC_AUC'``) are accepted too.
"""

from __future__ import annotations

from typing import Literal

from kiln.errors import TrainingError

__all__ = ["DEFAULT_OBJECTIVES", "OBJECTIVES", "Direction", "check_objective"]

Direction = Literal["maximize", "minimize"]

OBJECTIVES: dict[str, dict[str, Direction]] = {
    "classification": {
        "roc_auc": "maximize",
        "pr_auc": "maximize",
        "accuracy": "maximize",
        "precision": "maximize",
        "recall": "maximize",
        "f1_score": "maximize",
        "log_loss": "minimize",
    },
    "regression": {
        "r2_score": "maximize",
        "explained_variance": "maximize",
        "mean_absolute_error": "minimize",
        "mean_squared_error": "minimize",
        "root_mean_squared_error": "minimize",
        "mean_squared_log_error": "minimize",
        "median_absolute_error": "minimize",
    },
    "clustering": {
        "davies_bouldin_index": "minimize",
        "mean_squared_distance": "minimize",
        "silhouette_score": "maximize",
    },
}
"""The metrics a trial can be scored on, per task, with the direction that is better."""

DEFAULT_OBJECTIVES: dict[str, str] = {
    "classification": "roc_auc",
    "regression": "r2_score",
    "clustering": "davies_bouldin_index",
}


def check_objective(model_type: str, task: str, objective: str | None) -> tuple[str, Direction]:
    """The objective's name and direction, defaulted per task; one that does not fit raises."""
    metrics = OBJECTIVES.get(task)
    if metrics is None:
        tunable = ", ".join(sorted(OBJECTIVES))
        raise TrainingError(
            f"{model_type} ({task}) cannot be tuned: there is no metric to score its trials on; "
            f"tune a model of another task ({tunable})"
        )
    name = DEFAULT_OBJECTIVES[task] if objective is None else objective
    if not isinstance(name, str):
        raise TrainingError(f"objective must be a metric name, got {name!r}")
    key = name.strip().lower()
    if key not in metrics:
        owner = next((t for t, m in OBJECTIVES.items() if key in m), None)
        what = f"is a {owner} metric" if owner else "is not a metric Kiln tunes on"
        raise TrainingError(
            f"objective {name!r} {what}; a {model_type} model ({task}) is tuned on one of: "
            f"{', '.join(metrics)}"
        )
    return key, metrics[key]
