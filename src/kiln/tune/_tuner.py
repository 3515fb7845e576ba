"""Hyper-parameter tuning: BigQuery ML's ``NUM_TRIALS`` / ``HPARAM_RANGE`` / ``HPARAM_CANDIDATES``
over any trainer's settings, driven by Optuna's ask-and-tell interface.

How a run goes:

1. The data is split once: ``eval_table`` when given, else a deterministic hash split of
   ``table`` (``eval_fraction`` held out, drawn with ``seed``). Every trial fits on the training
   part (with the evaluation part for the trainer's early stopping, as the Trainer component
   does) and is scored on the evaluation part.
2. The sampler proposes settings: ``tpe`` (BigQuery ML's ``VIZIER_DEFAULT``; Optuna's TPE after
   a few random start-up trials), ``random`` (``RANDOM_SEARCH``) or ``grid`` (``GRID_SEARCH``:
   candidates and integer ranges only; every point once, in an order shuffled with ``seed``).
   ``seed`` seeds the sampler, so a sequential run is reproducible: the same seed gives the
   same trials and the same best settings.
3. A trial is COMPLETE (scored), PRUNED (stopped early) or FAILED (the trainer refused the
   settings, or the objective is undefined): a failed trial does not stop the run, unless the
   first :data:`HOPELESS_AFTER` all fail with the same error (it does not depend on the
   settings then: bad data, or an objective undefined on the evaluation rows).
4. Budgets: ``num_trials`` trials (default :data:`DEFAULT_NUM_TRIALS`; the whole grid for grid
   search), and/or ``time_budget`` seconds: no trial starts once it is spent, the running ones
   finish, and the best so far is returned.
5. The best settings are refitted on the training part: ``best_model``.

Pruning (``prune``, supervised models): after each iteration a trial reports its evaluation loss
(:func:`kiln.train.iteration_listener`) and Optuna's median rule stops it when it is worse than
the median of the completed trials at that iteration: the trial raises
:class:`optuna.TrialPruned` out of the trainer's ``fit``. The rule starts after
``max(2, min(5, trials // 4))`` completed trials and from iteration
:data:`PRUNE_WARMUP_STEPS`. Losses are lower-is-better; for a maximised objective the tuner
reports them negated, so the pruner compares them the way the study is directed. k-means trials
are not pruned: their loss falls with more clusters whatever the objective says.

Parallel trials (``num_parallel_trials`` > 1) run in worker processes
(``python -m kiln.tune._worker``): the data is written once as Arrow IPC files, which each worker
memory-maps, and trials, reports and results cross as JSON lines (no pickles). A worker's report
is answered by this process's pruner, so the rule is the same as in sequential runs. Workers run
numeric libraries on one thread each. With parallel trials the order in which results arrive
depends on timing, so TPE's later proposals (and the best settings) may differ between runs.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from kiln.errors import TrainingError
from kiln.model import Model
from kiln.train import get_trainer
from kiln.transform import FittedTransform
from kiln.tune._objective import Direction, check_objective
from kiln.tune._space import (
    Candidates,
    Dimension,
    Range,
    Resolved,
    default_search_space,
    grid,
    parse_search_space,
    resolve,
)
from kiln.tune._trial import TrialData, fit, run_trial

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ALGORITHMS",
    "DEFAULT_NUM_TRIALS",
    "EVAL_FRACTION",
    "HOPELESS_AFTER",
    "PRUNE_WARMUP_STEPS",
    "TuningResult",
    "from_bigquery_options",
    "tune",
]

DEFAULT_NUM_TRIALS = 10
"""Trials when neither ``num_trials`` nor ``time_budget`` is given (BigQuery ML has no default:
there, setting ``NUM_TRIALS`` is what turns tuning on)."""

EVAL_FRACTION = 0.2
"""The share of ``table`` held out to score trials when no ``eval_table`` is given."""

PRUNE_WARMUP_STEPS = 3
"""Iterations every trial runs before the median rule may prune it."""

HOPELESS_AFTER = 3
"""A run stops when its first this many trials all fail with the same error."""

ALGORITHMS: dict[str, Literal["tpe", "random", "grid"]] = {
    "tpe": "tpe",
    "vizier_default": "tpe",
    "random": "random",
    "random_search": "random",
    "grid": "grid",
    "grid_search": "grid",
}
"""Kiln's names and BigQuery ML's ``HPARAM_TUNING_ALGORITHM`` names, case-insensitive."""

State = Literal["COMPLETE", "PRUNED", "FAILED"]

TRIALS_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.int64(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("state", pa.string(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("is_optimal", pa.bool_(), nullable=False),
    ]
)
"""The trial table: one row per trial (BigQuery ML's ``ML.TRIAL_INFO``): the tuned settings as
JSON text, the objective's value (COMPLETE trials only), the error of a FAILED one."""


@dataclass
class TuningResult:
    """What :func:`tune` found: the best settings, their score, every trial, the refitted model."""

    best_params: dict[str, Any]
    best_score: float
    objective: str
    direction: Direction
    trials: pa.Table
    best_model: Model
    best_trial_id: int = 0
    model_type: str = ""
    label: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    algorithm: str = "tpe"
    seed: int = 0

    def summary(self) -> dict[str, Any]:
        """Everything but the trial table and the model, as JSON-ready values."""
        states = self.trials["state"].to_pylist()
        return {
            "model_type": self.model_type,
            "label": self.label,
            "objective": self.objective,
            "direction": self.direction,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "best_trial_id": self.best_trial_id,
            "settings": self.settings,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "num_trials": len(states),
            "trial_states": {s: states.count(s) for s in ("COMPLETE", "PRUNED", "FAILED")},
        }


@dataclass
class _Record:
    trial_id: int
    params: dict[str, Any]
    state: State
    duration_s: float
    score: float | None = None
    error: str | None = None


# --------------------------------------------------------------------------- checking


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrainingError(f"{name} must be a whole number, got {value!r}")
    if value < 1:
        raise TrainingError(f"{name} must be at least 1, got {value!r}")
    return value


def _check_budgets(
    num_trials: object, time_budget: object, num_parallel_trials: object, seed: object
) -> tuple[int | None, float | None, int, int]:
    trials = None if num_trials is None else _positive_int("num_trials", num_trials)
    budget: float | None = None
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, int | float):
            raise TrainingError(f"time_budget must be a number of seconds, got {time_budget!r}")
        if not math.isfinite(time_budget) or time_budget <= 0:
            raise TrainingError(
                f"time_budget must be a positive number of seconds, got {time_budget!r}"
            )
        budget = float(time_budget)
    parallel = _positive_int("num_parallel_trials", num_parallel_trials)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TrainingError(f"seed must be a whole number >= 0, got {seed!r}")
    return trials, budget, parallel, seed


def _algorithm(algorithm: object) -> Literal["tpe", "random", "grid"]:
    name = algorithm.strip().lower() if isinstance(algorithm, str) else None
    if name is None or name not in ALGORITHMS:
        raise TrainingError(
            f"unknown algorithm {algorithm!r}; use 'tpe' (BigQuery ML's VIZIER_DEFAULT), "
            "'random' (RANDOM_SEARCH) or 'grid' (GRID_SEARCH)"
        )
    return ALGORITHMS[name]


def _split(
    table: pa.Table, eval_table: pa.Table | None, eval_fraction: float, seed: int
) -> tuple[pa.Table, pa.Table]:
    if eval_table is not None:
        if eval_table.num_rows == 0:
            raise TrainingError("eval_table has no rows: trials need rows to be scored on")
        return table, eval_table
    if not 0.0 < eval_fraction < 1.0:
        raise TrainingError(f"eval_fraction must lie strictly between 0 and 1, got {eval_fraction}")
    from kiln.data import split_table

    parts = split_table(table, {"train": 1.0 - eval_fraction, "eval": eval_fraction}, seed=seed)
    if parts["train"].num_rows < 2 or parts["eval"].num_rows == 0:
        raise TrainingError(
            f"the table has {table.num_rows} row(s): too few to hold out {eval_fraction:.0%} to "
            "score trials on; pass more rows, or an eval_table"
        )
    return parts["train"], parts["eval"]


# --------------------------------------------------------------------------- optuna


class _Codec:
    """Optuna's distributions for the resolved dimensions, and back to trainer values:
    candidates that are not scalars (``hidden_units`` lists) travel as their JSON text."""

    def __init__(self, resolved: list[Resolved], grid_points: dict[str, list[Any]] | None) -> None:
        from optuna.distributions import (
            BaseDistribution,
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        self.distributions: dict[str, BaseDistribution] = {}
        self.decode_map: dict[str, dict[Any, Any]] = {}
        self.grid: dict[str, list[Any]] = {}
        for r in resolved:
            values: list[Any] | None = None
            if grid_points is not None:
                values = grid_points[r.name]
            elif isinstance(r.dimension, Candidates):
                values = list(r.dimension.values)
            if values is not None:
                scalar = all(v is None or isinstance(v, bool | int | float | str) for v in values)
                encoded = values if scalar else [json.dumps(v) for v in values]
                self.decode_map[r.name] = dict(zip(encoded, values, strict=True))
                self.distributions[r.name] = CategoricalDistribution(encoded)
                self.grid[r.name] = encoded
            elif r.integer:
                self.distributions[r.name] = IntDistribution(int(r.low), int(r.high), log=r.log)
            else:
                self.distributions[r.name] = FloatDistribution(r.low, r.high, log=r.log)

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.distributions:
            value = params[name]
            mapping = self.decode_map.get(name)
            out[name] = mapping[value] if mapping is not None else value
        return out


def _study(
    algorithm: str,
    direction: Direction,
    codec: _Codec,
    seed: int,
    planned: int | None,
    pruning: bool,
) -> optuna.Study:
    import optuna

    sampler: optuna.samplers.BaseSampler
    if algorithm in ("grid", "random"):
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        startup = 10 if planned is None else min(10, max(2, planned // 3))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if pruning:
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=max(2, min(5, (planned or 20) // 4)),
            n_warmup_steps=PRUNE_WARMUP_STEPS,
        )
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    if algorithm == "grid":
        # Every point of the grid, queued in an order shuffled with the seed (Optuna's
        # GridSampler stops the study from its after-trial hook, which ask-and-tell refuses).
        names = list(codec.grid)
        points = [dict(zip(names, p, strict=True)) for p in product(*codec.grid.values())]
        for index in np.random.default_rng(seed).permutation(len(points)):
            study.enqueue_trial(points[int(index)])
    return study


class _Reporter:
    """Turns a trial's per-iteration losses into Optuna reports; True when it should stop."""

    def __init__(self, trial: optuna.Trial, direction: Direction) -> None:
        self.trial = trial
        self.sign = -1.0 if direction == "maximize" else 1.0
        self.last_step = -1

    def should_prune(self, step: int, loss: float) -> bool:
        if step <= self.last_step:  # Optuna keeps the first value of a step
            return False
        self.last_step = step
        self.trial.report(self.sign * loss, step)
        return bool(self.trial.should_prune())


# --------------------------------------------------------------------------- the search


class _Search:
    def __init__(
        self,
        study: optuna.Study,
        codec: _Codec,
        data: TrialData,
        fixed: dict[str, Any],
        direction: Direction,
        num_trials: int | None,
        time_budget: float | None,
    ) -> None:
        self.study, self.codec, self.data, self.fixed = study, codec, data, fixed
        self.direction = direction
        self.num_trials, self.time_budget = num_trials, time_budget
        self.records: list[_Record] = []
        self.asked = 0
        self.started = time.monotonic()

    def can_ask(self) -> bool:
        if self.num_trials is not None and self.asked >= self.num_trials:
            return False
        return self.time_budget is None or time.monotonic() - self.started < self.time_budget

    def ask(self) -> tuple[optuna.Trial, dict[str, Any]]:
        trial = self.study.ask(self.codec.distributions)
        self.asked += 1
        return trial, self.codec.decode(trial.params)

    def tell(self, trial: optuna.Trial, record: _Record) -> None:
        from optuna.trial import TrialState

        self.records.append(record)
        self._stop_if_hopeless()
        if record.state == "COMPLETE":
            self.study.tell(trial, record.score)
        elif record.state == "PRUNED":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def _stop_if_hopeless(self) -> None:
        """The first :data:`HOPELESS_AFTER` trials all failed with one error: it does not depend
        on the settings (bad data, an objective undefined on the evaluation rows), so say it
        now rather than after every trial has failed the same way."""
        if len(self.records) != HOPELESS_AFTER:
            return
        errors = {r.error for r in self.records}
        if len(errors) == 1 and all(r.state == "FAILED" for r in self.records):
            raise TrainingError(
                f"the first {HOPELESS_AFTER} trials all failed alike, whatever their settings: "
                f"{errors.pop()}"
            )

    def run_here(self) -> None:
        """One trial at a time, in this process."""
        import optuna

        while self.can_ask():
            trial, params = self.ask()
            reporter = _Reporter(trial, self.direction)

            def report(step: int, loss: float, reporter: _Reporter = reporter) -> None:
                if reporter.should_prune(step, loss):
                    raise optuna.TrialPruned

            started = time.perf_counter()
            record = _Record(trial.number, params, "COMPLETE", 0.0)
            try:
                record.score = run_trial(self.data, {**self.fixed, **params}, report)
            except optuna.TrialPruned:
                record.state = "PRUNED"
            except Exception as e:
                record.state, record.error = "FAILED", f"{type(e).__name__}: {e}"
            record.duration_s = time.perf_counter() - started
            self.tell(trial, record)

    def run_in_workers(self, size: int) -> None:
        """Up to ``size`` trials at a time, in worker processes."""
        from kiln.tune._pool import WorkerPool, write_data

        with tempfile.TemporaryDirectory(prefix="kiln-tune-") as tmp:
            pool = WorkerPool(size, write_data(self.data, Path(tmp)))
            running: dict[int, tuple[optuna.Trial, dict[str, Any], _Reporter]] = {}
            try:
                while True:
                    while len(running) < size and self.can_ask():
                        trial, params = self.ask()
                        worker = pool.acquire()
                        worker.trial = trial.number
                        running[trial.number] = (trial, params, _Reporter(trial, self.direction))
                        worker.send({"trial": trial.number, "settings": {**self.fixed, **params}})
                    if not running:
                        break
                    worker, message = pool.events.get()
                    if "died" in message:
                        number = worker.trial
                        pool.discard(worker)
                        if number is not None and number in running:
                            trial, params, _ = running.pop(number)
                            error = (
                                f"WorkerDied: the trial's worker process exited with code "
                                f"{message['died']} (killed, or out of memory?)"
                            )
                            tail = worker.stderr_tail()
                            self.tell(
                                trial,
                                _Record(
                                    number,
                                    params,
                                    "FAILED",
                                    0.0,
                                    error=f"{error}\n{tail}" if tail else error,
                                ),
                            )
                        continue
                    number = int(message["trial"])
                    if "report" in message:
                        step, loss = message["report"]
                        _, _, reporter = running[number]
                        prune = reporter.should_prune(int(step), float(loss))
                        worker.send({"prune": prune})
                        continue
                    trial, params, _ = running.pop(number)
                    pool.release(worker)
                    self.tell(
                        trial,
                        _Record(
                            number,
                            params,
                            message["state"],
                            float(message.get("duration_s", 0.0)),
                            score=message.get("score"),
                            error=message.get("error"),
                        ),
                    )
            except BaseException:
                pool.kill()
                raise
            finally:
                pool.close()

    def best(self) -> _Record:
        complete = [r for r in self.records if r.state == "COMPLETE" and r.score is not None]
        if not complete:
            counts = {s: sum(r.state == s for r in self.records) for s in ("PRUNED", "FAILED")}
            if not self.records:
                raise TrainingError(
                    f"no trial ran within the time budget of {self.time_budget:g} s; give "
                    "time_budget more seconds"
                )
            errors = [r.error for r in self.records if r.error]
            first = f"; the first error: {errors[0]}" if errors else ""
            raise TrainingError(
                f"no trial completed: {len(self.records)} ran, {counts['FAILED']} failed and "
                f"{counts['PRUNED']} were pruned{first}"
            )
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(complete, key=lambda r: (sign * (r.score or 0.0), -r.trial_id))

    def table(self, best: _Record) -> pa.Table:
        rows = sorted(self.records, key=lambda r: r.trial_id)
        return pa.Table.from_pylist(
            [
                {
                    "trial_id": r.trial_id,
                    "params": json.dumps(r.params, sort_keys=True),
                    "score": r.score if r.state == "COMPLETE" else None,
                    "state": r.state,
                    "duration_s": r.duration_s,
                    "error": r.error,
                    "is_optimal": r.trial_id == best.trial_id,
                }
                for r in rows
            ],
            schema=TRIALS_SCHEMA,
        )


# --------------------------------------------------------------------------- tune


def tune(
    table: pa.Table,
    *,
    model_type: str,
    label: str | None,
    search_space: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    objective: str | None = None,
    num_trials: int | None = None,
    time_budget: float | None = None,
    algorithm: str = "tpe",
    num_parallel_trials: int = 1,
    eval_table: pa.Table | None = None,
    eval_fraction: float = EVAL_FRACTION,
    seed: int = 0,
    prune: bool = True,
    fitted_transform: FittedTransform | None = None,
) -> TuningResult:
    """Search ``model_type``'s settings for the best ``objective`` on held-out rows.

    ``search_space`` maps option names to :func:`~kiln.tune.hparam_range` /
    :func:`~kiln.tune.hparam_candidates` (or their JSON forms); without it,
    :func:`~kiln.tune.default_search_space`. ``settings`` are fixed for every trial. ``objective``
    is a metric of :mod:`kiln.evaluate` (default: BigQuery ML's per task, see
    :mod:`kiln.tune._objective`). ``fitted_transform`` is a transform already fitted (the
    pipeline's Transform step), used as is by every trial. See this module's docstring for the
    split, budgets, pruning and parallel trials.
    """
    algo = _algorithm(algorithm)
    trials, budget, parallel, seed = _check_budgets(
        num_trials, time_budget, num_parallel_trials, seed
    )
    trainer_cls = get_trainer(model_type)
    model_type = trainer_cls.model_type
    if parallel > 1 and trainer_cls.__module__ == "__main__":
        raise TrainingError(
            f"parallel trials run in worker processes, which cannot import {model_type}'s "
            "trainer: it is defined in __main__; move it into a module, or pass "
            "num_parallel_trials=1"
        )
    metric, direction = check_objective(model_type, trainer_cls.task, objective)
    if settings is not None and not isinstance(settings, Mapping):
        raise TrainingError(f"settings must be a mapping of option to value, got {settings!r}")
    fixed = {str(k).lower(): v for k, v in (settings or {}).items()}
    space: dict[str, Dimension] = (
        default_search_space(model_type)
        if search_space is None
        else parse_search_space(search_space)
    )
    space = {k: v for k, v in space.items() if search_space is not None or k not in fixed}
    if not space:
        raise TrainingError(
            f"nothing to tune: settings fix every option of {model_type}'s default search space; "
            "pass search_space="
        )
    resolved = resolve(model_type, space, fixed)
    grid_points = grid(resolved) if algo == "grid" else None
    if grid_points is not None:
        size = math.prod(len(v) for v in grid_points.values())
        trials = size if trials is None else min(trials, size)
    elif trials is None and budget is None:
        trials = DEFAULT_NUM_TRIALS
    train, held_out = _split(table, eval_table, eval_fraction, seed)
    data = TrialData(
        train, held_out, model_type, label, metric, fitted_transform, trainer_cls.__module__
    )
    codec = _Codec(resolved, grid_points)
    pruning = prune and trainer_cls.task in ("regression", "classification")

    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = _study(algo, direction, codec, seed, trials, pruning)
        search = _Search(study, codec, data, fixed, direction, trials, budget)
        if parallel > 1:
            search.run_in_workers(parallel if trials is None else min(parallel, trials))
        else:
            search.run_here()
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = search.best()
    model = fit(data, {**fixed, **best.params})
    assert best.score is not None
    return TuningResult(
        best_params=best.params,
        best_score=best.score,
        objective=metric,
        direction=direction,
        trials=search.table(best),
        best_model=model,
        best_trial_id=best.trial_id,
        model_type=model_type,
        label=label,
        settings=fixed,
        algorithm=algo,
        seed=seed,
    )


# --------------------------------------------------------------------------- BigQuery ML


_BIGQUERY_KEYS = {
    "num_trials": "num_trials",
    "max_parallel_trials": "num_parallel_trials",
    "hparam_tuning_algorithm": "algorithm",
    "hparam_tuning_objectives": "objective",
}


def from_bigquery_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`tune`'s keyword arguments from BigQuery ML ``CREATE MODEL`` ``OPTIONS``:
    ``NUM_TRIALS``, ``MAX_PARALLEL_TRIALS``, ``HPARAM_TUNING_ALGORITHM``,
    ``HPARAM_TUNING_OBJECTIVES`` (one objective); options set to ``HPARAM_RANGE`` or
    ``HPARAM_CANDIDATES`` (a :class:`Range` or :class:`Candidates`, or their JSON forms) into
    ``search_space``; every other option into ``settings``. Without a tuned option the search
    space is the model type's default."""
    out: dict[str, Any] = {}
    space: dict[str, Any] = {}
    fixed: dict[str, Any] = {}
    for key, value in options.items():
        name = str(key).lower()
        if name in _BIGQUERY_KEYS:
            if name == "hparam_tuning_objectives" and isinstance(value, list | tuple):
                if len(value) != 1:
                    raise TrainingError(
                        f"HPARAM_TUNING_OBJECTIVES lists {len(value)} objectives; Kiln tunes on "
                        "one: name one metric"
                    )
                value = value[0]
            out[_BIGQUERY_KEYS[name]] = value
        elif isinstance(value, Range | Candidates) or (
            isinstance(value, Mapping) and set(value) & {"range", "candidates"}
        ):
            space[name] = value
        else:
            fixed[name] = value
    if space:
        out["search_space"] = space
    if fixed:
        out["settings"] = fixed
    return out
