"""Hyper-parameter tuning over any trainer's settings: BigQuery ML's ``NUM_TRIALS``,
``HPARAM_RANGE`` and ``HPARAM_CANDIDATES`` on Optuna (TPE, random or grid search), with budgets
by trials or time, pruning, and parallel trials in worker processes (see
:mod:`kiln.tune._tuner`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.tune._objective import DEFAULT_OBJECTIVES, OBJECTIVES
    from kiln.tune._space import (
        Candidates,
        Range,
        default_search_space,
        hparam_candidates,
        hparam_range,
        parse_search_space,
    )
    from kiln.tune._tuner import (
        ALGORITHMS,
        DEFAULT_NUM_TRIALS,
        EVAL_FRACTION,
        PRUNE_WARMUP_STEPS,
        TuningResult,
        from_bigquery_options,
        tune,
    )

_MODULES = {
    "kiln.tune._objective": ["DEFAULT_OBJECTIVES", "OBJECTIVES"],
    "kiln.tune._space": [
        "Candidates",
        "Range",
        "default_search_space",
        "hparam_candidates",
        "hparam_range",
        "parse_search_space",
    ],
    "kiln.tune._tuner": [
        "ALGORITHMS",
        "DEFAULT_NUM_TRIALS",
        "EVAL_FRACTION",
        "PRUNE_WARMUP_STEPS",
        "TuningResult",
        "from_bigquery_options",
        "tune",
    ],
}
__all__ = [
    "ALGORITHMS",
    "DEFAULT_NUM_TRIALS",
    "DEFAULT_OBJECTIVES",
    "EVAL_FRACTION",
    "OBJECTIVES",
    "PRUNE_WARMUP_STEPS",
    "Candidates",
    "Range",
    "TuningResult",
    "default_search_space",
    "from_bigquery_options",
    "hparam_candidates",
    "hparam_range",
    "parse_search_space",
    "tune",
]

_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
