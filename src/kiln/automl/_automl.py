"""AutoML: the best model Kiln can find for a table and a target in the time allowed.

What it does, in order (the clock starts when :func:`fit` is called):

1. Reads and checks the data, detects the task (``binary``, ``multiclass``, ``regression``) and
   the metric (ROC AUC, log loss, RMSE unless told), and chooses how to validate: 5-fold
   cross-validation up to :data:`CV_MAX_ROWS` training rows, else one stratified holdout (20 %,
   10 % beyond 100,000 rows); a holdout too when the baseline's cross-validation shows that
   the budget affords few (:data:`CV_MAX_SHARE`). Each family's automatic preprocessing is
   fitted once.
2. Trains candidates cheapest first, as FLAML does: a small boosted-tree baseline (always, even
   when the budget is already spent: never nothing), LightGBM's own defaults, a linear model,
   a random forest, two larger boosted-tree presets (from :data:`LARGE_ROWS` rows, fewer and
   bigger trees), a DNN when PyTorch is installed and the budget allows, then Optuna's TPE over
   the boosted trees' settings until the budget is spent.
   Boosted trees stop early on the validation loss (``early_stop_rounds``) and keep their best
   iteration. A trial that would run past its share of the time is stopped from the trainers'
   iteration listener and recorded as ``timeout``.
3. With cross-validation, the best candidates and each family's best are scored again on the
   folds of a fresh shuffle (:data:`RECHECK_TOP`, :meth:`_Search._recheck`), and the final choice
   is made on those scores alone: the best of hundreds of trials on one split owes part of its
   lead to that split's noise. Then greedy ensemble selection (Caruana et al. 2004) over the
   chosen pool's out-of-fold predictions; the ensemble is kept only when it scores better than
   the best candidate alone.
4. Refits the chosen members on all the rows (with the number of boosting rounds early stopping
   found) when the time left allows, and returns an ordinary :class:`~kiln.model.Model`: one
   prediction path, one safe format, servable. Its ``metrics["automl"]`` holds the leaderboard.

Every candidate runs with one thread (the trainers' default): on shared 2-core machines libraries
that take every core run 30-120x slower when another process is busy.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiln.errors import DataError, TrainingError
from kiln.model import Model, preprocessing_for
from kiln.train import StopTraining, Trainer, get_trainer, iteration_listener
from kiln.train._forest import build_estimate, compiled_forest
from kiln.train.dl import TABLE_SETTINGS
from kiln.transform import FittedTransform, OneHotFeatures, StackedTransform

__all__ = [
    "CV_MAX_ROWS",
    "METRICS",
    "AutoMLResult",
    "AutoMLWarning",
    "Progress",
    "detect_task",
    "fit",
    "leaderboard_of",
]

Array = np.ndarray[Any, np.dtype[Any]]
Features = Array | OneHotFeatures
Task = Literal["binary", "multiclass", "regression"]

CV_MAX_ROWS = 5_000
"""Up to this many training rows, candidates are scored by 5-fold cross-validation..."""
CV_MAX_SHARE = 0.01
HOLDOUT_MIN_ROWS = 1_000
"""... unless the baseline's cross-validation took more than this share of the budget and there
are at least this many rows (a holdout of 200): then fewer than 100 baseline-sized
cross-validations fit in the budget, the search would see only a handful of real candidates
(each grows ~10x the baseline's rounds), and one holdout lets it see five times as many. On
digits (1,437 rows, 10 classes; the baseline's cross-validation takes 0.78 s) at 60 s: test log
loss 0.0816 by cross-validation (7 candidates), 0.0678 by holdout (35)."""
MAX_CLASSES = 200
MAX_ROUNDS = 1_000
"""Boosting rounds a candidate may grow before early stopping (50 rounds without progress): with
the learning rate at least :data:`MIN_LEARN_RATE`, more rounds cost prediction time for little."""
MIN_LEARN_RATE = 0.02
LARGE_ROWS = 100_000
"""From this many training rows, boosted trees are also tried big (255 and 1,023 leaves), and
the search goes up to 1,024 leaves: fewer, larger trees fit as well in less time and predict
faster."""
MAX_MEMBERS = 3
"""An ensemble has at most this many distinct members: each one is paid for at every prediction."""
ENSEMBLE_TOLERANCE = 1e-4
"""A bigger ensemble is kept only when it validates better by this share of the score."""
LINEAR_MAX_CELLS = 20_000_000
"""Linear models and DNNs train on at most this many rows x features (a sample of the rows)."""
LINEAR_GD_FEATURES = 256
"""Beyond this many features a linear regression descends rather than solving X'X."""
DNN_MIN_SECONDS = 20.0
"""A DNN is tried only with at least this much search time left."""
REFIT_MAX = 1 / 3
"""Share of the budget the refit of the chosen models on every row may take when validation held
out a fifth of the rows (5-fold cross-validation, or a holdout of 20 %); scaled by the share
held out, as the refit's gain is the rows it adds (a 10 % holdout: a sixth of the budget). On
diamonds at 60 s (20 % holdout), refitting the best candidate (CatBoost, 16 s) took the test
RMSE from 520.2 to 517.3; on flights (10 % holdout), stopping the search 15 s early for refits
took the test ROC AUC from 0.8071 to 0.8062: the search's next candidate was worth more. The
time is the search's: on digits at 10 s the reserve's 3 s cost five of 14 candidates, and the
test log loss went from 0.0735 to 0.080 (FLAML 0.085, AutoGluon 0.083)."""
END_MARGIN = 0.02
"""Share of the budget kept at the end beyond the measured estimates (see ``_end_reserve``)."""
TRIAL_SHARE = 0.5
"""A candidate is stopped once it has run for this share of the search time left at its start."""
CATBOOST_CELL_S = 60e-9
CATBOOST_FEATURE_S = 1.5e-4
"""CatBoost's time per round (one thread, depth 6), measured for 1,000 rounds on the bench's
data: 52-55 ns per row and feature on HI (22,000 x 13) and diamonds (43,000 x 9), plus some
0.1-0.2 ms per feature on small data (breast_cancer's 455 x 30: 6.1 ms a round)."""
RECHECK_TOP = 8
RECHECK_MAX = 0.2
"""With cross-validation, the best :data:`RECHECK_TOP` candidates (and each family's best) are
scored again on fresh folds before the final choice, in at most this share of the budget: the
best of hundreds of trials on one split owes part of its lead to that split's noise."""
FAMILIES = ("boosted_tree", "linear", "random_forest", "dnn", "catboost")
LIBRARIES = {
    "boosted_tree": "lightgbm",
    "random_forest": "lightgbm",
    "dnn": "torch",
    "catboost": "catboost",
}
"""The library each family's trainer imports on its first fit: imported before a candidate's fit
is timed, as the import (1.4 s for LightGBM, seconds for PyTorch) is not the candidate's cost."""
BOOSTED = ("boosted_tree", "catboost")
"""Families that boost rounds under early stopping: refitted on every row with the rounds it
found, grown by :attr:`_Search._refit_growth`."""
TOO_SLOW = "too_slow"
"""A candidate's status when it predicts slower than ``infer_limit`` allows (see :func:`fit`)."""


class AutoMLWarning(UserWarning):
    """Something AutoML had to give up on: the budget ran out before the search began, rows with
    a null target were dropped, a candidate failed."""


# ------------------------------------------------------------------------------------------------
# metrics: (higher is better, applies to tasks)


def _roc_auc(y: Array, p: Array) -> float:
    pos = p[:, 1]
    truth = y == 1
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(pos, kind="mergesort")
    ranks = np.empty(len(pos))
    sorted_p = pos[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    ends = np.r_[starts[1:], len(pos)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y: Array, p: Array) -> float:
    picked = np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.log(picked).mean())


def _accuracy(y: Array, p: Array) -> float:
    return float((p.argmax(axis=1) == y).mean())


def _f1_macro(y: Array, p: Array) -> float:
    pred = p.argmax(axis=1)
    scores = []
    for c in range(p.shape[1]):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _rmse(y: Array, p: Array) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: Array, p: Array) -> float:
    return float(np.mean(np.abs(y - p)))


def _r2(y: Array, p: Array) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - p) ** 2).sum()) / total if total > 0 else 0.0


METRICS: dict[str, tuple[Callable[[Array, Array], float], bool, tuple[Task, ...]]] = {
    "roc_auc": (_roc_auc, True, ("binary",)),
    "log_loss": (_log_loss, False, ("binary", "multiclass")),
    "accuracy": (_accuracy, True, ("binary", "multiclass")),
    "f1_macro": (_f1_macro, True, ("binary", "multiclass")),
    "rmse": (_rmse, False, ("regression",)),
    "mean_absolute_error": (_mae, False, ("regression",)),
    "r2_score": (_r2, True, ("regression",)),
}
"""Metric name -> (function of (truth, prediction), higher is better, the tasks it scores)."""
_ALIASES = {"mae": "mean_absolute_error", "r2": "r2_score", "auc": "roc_auc", "f1": "f1_macro"}
_DEFAULT_METRIC: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
}


# ------------------------------------------------------------------------------------------------
# results


@dataclass
class Progress:
    """What a progress display shows after each candidate."""

    elapsed_s: float
    time_budget_s: float
    candidates: int
    best_score: float | None
    best_model_type: str | None
    metric: str
    last_model_type: str
    last_status: str


@dataclass
class AutoMLResult:
    """The model AutoML chose, the leaderboard of every candidate, and how it got there.

    The leaderboard has a row per candidate: its family, settings, status, ``validation_score``
    (for a ``rechecked`` one, its score on the fresh folds the final choice was made on), fit and
    predict times, the estimated batch cost per row (``predict_us_per_row``, preprocessing
    included; LightGBM's trees timed with LightGBM's own predictor, an upper bound, or where
    that is over a third of an ``infer_limit``, walked, as the saved model predicts them), best
    boosting iteration and ensemble weight; the rechecked candidates are ranked first, best
    first, then the others."""

    model: Model
    leaderboard: pa.Table
    task: Task
    metric: str
    best_score: float
    validation: str
    elapsed_s: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    id: int
    model_type: str
    settings: dict[str, Any]
    family: str
    status: str = "ok"
    score: float = math.nan
    fit_s: float = 0.0
    predict_s: float = 0.0
    prediction: Array | None = None  # validation (or out-of-fold) predictions
    trainers: list[Trainer] = field(default_factory=list)
    best_iterations: list[int] = field(default_factory=list)
    error: str = ""
    weight: float = 0.0
    rechecked: bool = False  # scored again on fresh folds (see _recheck): score is that one
    walked: bool = False  # predict_s timed through Kiln's tree walker (see _timed_walked)


@dataclass
class _Validation:
    """One candidate's settings trained and scored over a set of folds."""

    status: str = "ok"
    error: str = ""
    prediction: Array | None = None  # out-of-fold (or validation) predictions of _scored_rows
    score: float = math.nan
    trainers: list[Trainer] = field(default_factory=list)
    best_iterations: list[int] = field(default_factory=list)
    fit_s: float = 0.0
    predict_s: float = 0.0


class _TrialTimeout(Exception):
    """Raised from the iteration listener when a candidate runs past its time."""


# ------------------------------------------------------------------------------------------------
# the search


def fit(
    data: pa.Table | str | Path,
    target: str,
    *,
    task: str = "auto",
    metric: str | None = None,
    time_budget: float = 60.0,
    exclude: Sequence[str] = (),
    seed: int = 0,
    ensemble: bool = True,
    infer_limit: float | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> AutoMLResult:
    """The best model for predicting ``target`` from the other columns of ``data`` (an Arrow
    table or a file/folder :func:`kiln.data.read_table` reads) found in ``time_budget`` seconds.

    ``task`` is ``auto`` (detected from the target), ``binary``, ``multiclass`` or
    ``regression``; ``metric`` one of :data:`METRICS` (default ROC AUC, log loss, RMSE);
    ``exclude`` names families to leave out (``boosted_tree``, ``linear``, ``random_forest``,
    ``dnn``, ``catboost``; the last two are tried only when PyTorch and CatBoost are installed).
    ``ensemble=False`` returns the best single candidate even where an ensemble of several
    validates better: it predicts as fast as its one model (an ensemble of three costs about three
    times as much per row; FLAML does not ensemble by default). ``infer_limit``
    (seconds per row, as AutoGluon's: ``2e-5`` is 20 µs a row, 50,000 rows/s on one thread) caps
    what the chosen model may cost to predict in batch, preprocessing included: each candidate's
    cost is measured on its validation rows (LightGBM's trees, when LightGBM's predictor puts
    them over a third of the limit, again through Kiln's tree walker, as the saved model predicts
    them: 2-9x faster), boosted trees grow only the rounds the cost per tree measured (walked)
    so far allows, a slower candidate is marked ``too_slow`` on the leaderboard (and
    steers the search away from its settings), and an ensemble only takes members while their
    costs sum within it; when nothing fits, the fastest candidate is returned with a warning.
    Finishes within the budget plus 10 % (plus one small baseline model when the budget is too
    small for even that), and always returns a model.
    """
    started = time.perf_counter()
    if not isinstance(time_budget, int | float) or isinstance(time_budget, bool):
        raise TrainingError(f"automl: time_budget must be a number of seconds, got {time_budget!r}")
    if not time_budget > 0:
        raise TrainingError(f"automl: time_budget must be > 0 seconds, got {time_budget}")
    if infer_limit is not None and (
        not isinstance(infer_limit, int | float)
        or isinstance(infer_limit, bool)
        or not infer_limit > 0
        or not math.isfinite(infer_limit)
    ):
        raise TrainingError(
            f"automl: infer_limit must be seconds per row > 0 (2e-5 is 20 µs a row, 50,000 "
            f"rows/s), got {infer_limit!r}"
        )
    unknown = sorted(set(exclude) - set(FAMILIES))
    if unknown:
        raise TrainingError(
            f"automl: cannot exclude {', '.join(unknown)}; the families are {', '.join(FAMILIES)}"
        )
    table = _read(data)
    search = _Search(
        table,
        target,
        task,
        metric,
        float(time_budget),
        set(exclude),
        seed,
        started,
        ensemble,
        None if infer_limit is None else float(infer_limit),
    )
    return search.run(progress)


def _read(data: pa.Table | str | Path) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, str | Path):
        from kiln.data import read_table

        return read_table(data)
    raise DataError(f"automl: data must be an Arrow table or a path, not {type(data).__name__}")


class _Search:
    def __init__(
        self,
        table: pa.Table,
        target: str,
        task: str,
        metric: str | None,
        budget: float,
        exclude: set[str],
        seed: int,
        started: float,
        ensemble: bool = True,
        infer_limit: float | None = None,
    ) -> None:
        self.started = started
        self.infer_limit = infer_limit
        self.budget = budget
        self.deadline = started + budget
        self.seed = seed
        self.exclude = exclude
        self.ensemble = bool(ensemble)
        self.notes: list[str] = []
        self.target = target
        self.table = self._clean(table, target)
        self.task = self._task(task)
        self.metric = self._metric(metric)
        score_fn, self.higher, _ = METRICS[self.metric]
        self.score_fn = score_fn
        self.y_raw = np.asarray(self.table[target].to_numpy(zero_copy_only=False))
        self.y: Array
        if self.task == "regression":
            self.y = self.y_raw.astype(np.float64)
            if not np.isfinite(self.y).all():
                bad = int(np.argmax(~np.isfinite(self.y)))
                raise TrainingError(
                    f"automl: target {target!r} has an infinite value (row {bad}); a regression "
                    "target must be finite: drop or fix those rows"
                )
            self.classes: Array = np.zeros(0)
        else:
            self.classes, self.y = np.unique(self.y_raw, return_inverse=True)
            self.y = self.y.reshape(-1)
            counts = np.bincount(self.y)
            if len(self.classes) > MAX_CLASSES:
                raise TrainingError(
                    f"automl: target {target!r} has {len(self.classes):,} classes; AutoML "
                    f"classifies up to {MAX_CLASSES}: group the rare ones, or pass "
                    "task='regression' for a numeric target"
                )
            if counts.max() < 2:
                raise TrainingError(
                    f"automl: every class of {target!r} appears once ({len(self.classes)} rows, "
                    f"{len(self.classes)} classes): there is nothing to learn a class from; "
                    "collect more rows per class"
                )
        self.n = self.table.num_rows
        self.folds = self._folds(self.seed)
        self.validation = (
            f"{len(self.folds)}-fold cross-validation"
            if len(self.folds) > 1
            else f"holdout ({len(self.folds[0][1]):,} rows)"
        )
        self.features: dict[str, tuple[FittedTransform, Features, list[int]]] = {}
        self.transform_s: dict[str, float] = {}  # preprocessing key -> seconds per row
        self.score_s = 0.0  # the longest one scoring of a candidate's predictions took
        self.candidates: list[_Candidate] = []

    # -- checks -----------------------------------------------------------------------------------

    def _clean(self, table: pa.Table, target: str) -> pa.Table:
        if target not in table.column_names:
            raise TrainingError(
                f"automl: target column {target!r} is not in the data; its columns: "
                f"{', '.join(table.column_names)}"
            )
        column = table[target]
        if column.null_count == len(column):
            raise TrainingError(f"automl: target column {target!r} is all null: nothing to learn")
        if column.null_count:
            self._note(
                f"{column.null_count:,} row(s) with a null {target!r} were left out of training"
            )
            table = table.filter(pc.is_valid(column))
        if table.num_columns < 2:
            raise TrainingError(f"automl: the data has no column besides the target {target!r}")
        if table.num_rows < 2:
            raise TrainingError(f"automl: {table.num_rows} usable row(s); at least 2 are needed")
        return table

    def _task(self, task: str) -> Task:
        if task not in ("auto", "binary", "multiclass", "regression"):
            raise TrainingError(
                f"automl: task must be auto, binary, multiclass or regression, not {task!r}"
            )
        column = self.table[self.target]
        if task == "auto":
            return detect_task(column)
        t = column.type
        distinct = len(pc.unique(column))
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        if task == "regression" and not numeric:
            raise TrainingError(
                f"automl: task='regression' needs a numeric target; {self.target!r} is {t}"
            )
        if task == "binary" and distinct != 2:
            raise TrainingError(
                f"automl: task='binary' needs exactly 2 classes; {self.target!r} has {distinct}"
            )
        return task  # type: ignore[return-value]

    def _metric(self, metric: str | None) -> str:
        if metric is None:
            return _DEFAULT_METRIC[self.task]
        name = _ALIASES.get(metric.lower(), metric.lower())
        if name not in METRICS:
            raise TrainingError(
                f"automl: unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}"
            )
        if self.task not in METRICS[name][2]:
            fits = sorted(m for m, (_, _, tasks) in METRICS.items() if self.task in tasks)
            raise TrainingError(
                f"automl: {name} does not score a {self.task} task; use one of {', '.join(fits)}"
            )
        return name

    def _note(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, AutoMLWarning, stacklevel=4)

    # -- validation -------------------------------------------------------------------------------

    def _folds(self, seed: int, *, holdout: bool = False) -> list[tuple[Array, Array]]:
        """(train rows, validation rows) per fold: stratified for classification; 5 folds up to
        :data:`CV_MAX_ROWS` rows unless ``holdout``, else one holdout."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(self.n)
        if self.task != "regression":
            # stratify: deal each class's rows round-robin (a class seen once stays in training)
            keyed = order[np.argsort(self.y[order], kind="stable")]
            position = np.empty(self.n, dtype=np.int64)
            for c in np.unique(self.y):
                rows = keyed[self.y[keyed] == c]
                position[rows] = np.arange(len(rows))
            fold_of_row = position
        else:
            fold_of_row = np.empty(self.n, dtype=np.int64)
            fold_of_row[order] = np.arange(self.n)
        if self.n <= CV_MAX_ROWS and not holdout:
            k = 5
            assignment = fold_of_row % k
            folds = []
            for f in range(k):
                valid = np.flatnonzero(assignment == f)
                train = np.flatnonzero(assignment != f)
                if len(valid) and len(train):
                    folds.append((train, valid))
            return folds
        fraction = 0.2 if self.n <= 100_000 else 0.1
        period = round(1 / fraction)
        valid_mask = fold_of_row % period == period - 1
        return [(np.flatnonzero(~valid_mask), np.flatnonzero(valid_mask))]

    def _to_holdout(self) -> None:
        """Validate on one holdout from now on (see :data:`CV_MAX_SHARE`). The candidates so far
        keep their out-of-fold predictions of the holdout's rows, and are scored on those; their
        times are scaled to what one holdout costs (one fold's fit, the holdout's rows
        predicted), which the time and prediction-cost estimates assume."""
        before, k = self._scored_rows(), len(self.folds)
        self.folds = self._folds(self.seed, holdout=True)
        rows = np.searchsorted(before, self._scored_rows())
        for cand in self.candidates:
            cand.fit_s /= k
            cand.predict_s *= len(rows) / len(before)
            if cand.prediction is not None:
                cand.prediction = cand.prediction[rows]
                cand.score = self._score(cand.prediction)
        self.validation = (
            f"holdout ({len(self.folds[0][1]):,} rows; cross-validation would leave the budget "
            "too few candidates)"
        )

    # -- features ---------------------------------------------------------------------------------

    def _features(self, model_type: str) -> tuple[FittedTransform, Features, list[int]]:
        """The family's automatic preprocessing, fitted once on all the rows, and its matrix. A
        trainer that fits from one-hot codes (a DNN) gets the codes where the dense matrix would
        pass :data:`LINEAR_MAX_CELLS` with one-hot blocks in it (it would otherwise train on a
        sample of the rows), else the matrix: its first layer is then one product, and an epoch
        takes half the time (20,000 rows, six one-hot blocks of 8 to 32 columns: 0.6-1.0 s
        against 1.3-1.6 s)."""
        key = _preprocessing_key(model_type)
        if key not in self.features:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant columns dropped: noted per model
                graph = preprocessing_for(self.table, model_type, label=self.target)
                fitted = graph.fit(self.table)
            t0 = time.perf_counter()
            if get_trainer(model_type).fits_one_hot_features:
                codes = fitted.one_hot_features(self.table)
                wide = codes.shape[0] * codes.shape[1] > LINEAR_MAX_CELLS
                X: Features = codes if wide and codes.hot else codes.toarray()
                categorical: list[int] = []
            else:
                matrix = fitted.transform(self.table)
                X, categorical = matrix.X, matrix.categorical
            self.transform_s[key] = (time.perf_counter() - t0) / max(self.n, 1)
            self.features[key] = (fitted, X, categorical)
        return self.features[key]

    # -- candidates -------------------------------------------------------------------------------

    def _model_type(self, family: str) -> str:
        classify = self.task != "regression"
        return {
            "boosted_tree": "boosted_tree_classifier" if classify else "boosted_tree_regressor",
            "random_forest": "random_forest_classifier" if classify else "random_forest_regressor",
            "linear": "logistic_reg" if classify else "linear_reg",
            "dnn": "dnn_classifier" if classify else "dnn_regressor",
            "catboost": "catboost_classifier" if classify else "catboost_regressor",
        }[family]

    def _plan(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The fixed candidates, cheapest and surest first."""
        gbm = {
            "max_tree_depth": 16,
            "min_tree_child_weight": 1e-3,
            "l2_reg": 0.0,
            "early_stop": False,
            "seed": self.seed,
        }
        if "boosted_tree" not in self.exclude:
            yield (
                "boosted_tree",
                {
                    **gbm,
                    "learn_rate": 0.1,
                    "num_leaves": 31,
                    "min_data_in_leaf": 20,
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                },
            )
        if "linear" not in self.exclude:
            width = self._features(self._model_type("linear"))[1].shape[1]
            linear: dict[str, Any] = {"l2_reg": 1.0, "max_iterations": 50}
            if width > LINEAR_GD_FEATURES:  # X'X would cost rows x width^2: descend instead
                linear.update(optimize_strategy="BATCH_GRADIENT_DESCENT", max_iterations=30)
            yield "linear", linear
            if self.n * width <= LINEAR_MAX_CELLS // 10:  # small data: regularisation matters
                for l2 in (0.01, 10.0, 100.0):
                    yield "linear", {**linear, "l2_reg": l2}
        if "random_forest" not in self.exclude:
            yield (
                "random_forest",
                {
                    "num_parallel_tree": 100,
                    "max_tree_depth": 16,
                    "num_leaves": 255,
                    "min_data_in_leaf": 1,
                    "seed": self.seed,
                },
            )
        if (
            "catboost" not in self.exclude
            and importlib.util.find_spec("catboost") is not None
            and self._catboost_fits()
        ):
            # CatBoost's symmetric trees at the learning rate it picks for the rows: a different
            # model from LightGBM's (ordered target statistics for categories), so a useful
            # ensemble member, and cheap to predict
            yield (
                "catboost",
                {
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                    "seed": self.seed,
                },
            )
        if "boosted_tree" not in self.exclude and self.n >= LARGE_ROWS:
            # Large data: a few big trees. On flights' 262,000 rows (one thread), 255 leaves at
            # learn rate 0.1 stopped at 201 rounds in 5.6 s with test ROC AUC 0.8019, and 1,023
            # leaves at 0.05 at 125 rounds in 8.8 s with 0.8045, where LightGBM's defaults ran
            # 939 rounds in 13.8 s for 0.7965, predicting 2.3x and 1.5x slower than these.
            yield (
                "boosted_tree",
                {
                    **gbm,
                    "learn_rate": 0.1,
                    "num_leaves": 255,
                    "min_data_in_leaf": 20,
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                },
            )
            yield (
                "boosted_tree",
                {
                    **gbm,
                    "learn_rate": 0.05,
                    "num_leaves": 1023,
                    "min_data_in_leaf": 50,
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                },
            )
        elif "boosted_tree" not in self.exclude:
            yield (
                "boosted_tree",
                {
                    **gbm,
                    "learn_rate": 0.05,
                    "num_leaves": 128,
                    "min_data_in_leaf": 3,
                    "colsample_bytree": 0.9,
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                },
            )
            yield (
                "boosted_tree",
                {
                    **gbm,
                    "learn_rate": 0.03,
                    "num_leaves": 64,
                    "min_data_in_leaf": 10,
                    "colsample_bytree": 0.7,
                    "subsample": 0.8,
                    "l2_reg": 1.0,
                    "max_iterations": MAX_ROUNDS,
                    "early_stop_rounds": 50,
                },
            )
        if "dnn" not in self.exclude and importlib.util.find_spec("torch") is not None:
            dnn = {**TABLE_SETTINGS, "seed": self.seed}
            yield "dnn", dnn
            if self._among_best("dnn"):
                # a second network, deeper and from other starting weights: two networks
                # disagree more than two tree models do, and their average validates better
                # than either (diabetes: RMSE 52.2 and 52.1 alone, 51.9 averaged)
                yield (
                    "dnn",
                    {**dnn, "hidden_units": [256, 128, 64], "dropout": 0.2, "seed": self.seed + 1},
                )

    def _ranked(self) -> list[_Candidate]:
        """The candidates that trained and scored, best first."""
        return sorted(
            (c for c in self.candidates if c.status == "ok"),
            key=lambda c: c.score,
            reverse=self.higher,
        )

    def _among_best(self, family: str) -> bool:
        """Whether the family's best candidate so far is among the :data:`MAX_MEMBERS` best: a
        likely ensemble member, so that a second one of it is worth its time."""
        return any(c.family == family for c in self._ranked()[:MAX_MEMBERS])

    def _catboost_fits(self) -> bool:
        """Whether CatBoost's :data:`MAX_ROUNDS` rounds on every fold likely fit the share of the
        time left a candidate gets: estimated from the rows and features (CatBoost's rounds
        cost about :data:`CATBOOST_CELL_S` per row and feature plus :data:`CATBOOST_FEATURE_S`
        per feature). Stopped at that share instead, it would be half-trained at a rate chosen
        for all its rounds (cross-validated, lost), and have taken the time of many LightGBM
        candidates."""
        width = int(self._features(self._model_type("catboost"))[1].shape[1])
        rows = len(self.folds[0][0])
        per_round = CATBOOST_CELL_S * rows * width + CATBOOST_FEATURE_S * width
        estimate = len(self.folds) * MAX_ROUNDS * per_round
        return estimate <= TRIAL_SHARE * max(self._search_left(), 0.0)

    @property
    def _max_leaves(self) -> int:
        """The most leaves the search gives a tree: 1,024 on large data (see ``_plan``)."""
        return 1024 if self.n >= LARGE_ROWS else 256

    def _tpe_settings(self, trial: Any) -> dict[str, Any]:
        return {
            "max_tree_depth": 16,
            "min_tree_child_weight": 1e-3,
            "early_stop": False,
            "seed": self.seed,
            "max_iterations": MAX_ROUNDS,
            "early_stop_rounds": 50,
            "learn_rate": trial.suggest_float("learn_rate", MIN_LEARN_RATE, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, self._max_leaves, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 128, log=True),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "l2_reg": trial.suggest_float("l2_reg", 1e-3, 10.0, log=True),
        }

    def _run_candidate(
        self, family: str, settings: dict[str, Any], *, deadline: float | None
    ) -> _Candidate:
        model_type = self._model_type(family)
        cap = self._round_cap(settings) if family == "boosted_tree" else None
        if cap is not None and cap < int(settings.get("max_iterations", MAX_ROUNDS)):
            settings = {**settings, "max_iterations": cap}
        cand = _Candidate(len(self.candidates), model_type, dict(settings), family)
        self.candidates.append(cand)
        try:
            _, X, categorical = self._features(model_type)
        except (DataError, TrainingError) as e:
            cand.status, cand.error = "failed", str(e)
            return cand
        run = self._validate(cand, X, categorical, self.folds, deadline=deadline)
        cand.status, cand.error = run.status, run.error
        cand.prediction, cand.score = run.prediction, run.score
        cand.trainers, cand.best_iterations = run.trainers, run.best_iterations
        cand.fit_s, cand.predict_s = run.fit_s, run.predict_s
        if self.infer_limit is not None and cand.status == "ok" and cand.id > 0:
            cost = self._cost([cand])
            calibrates = cand.family == "boosted_tree" and not any(
                c.walked for c in self.candidates if c.family == "boosted_tree"
            )  # the first gives the cost per tree that caps the rounds (_tree_cost) walked
            share = self.infer_limit / MAX_MEMBERS  # an ensemble member's share of the limit
            if (cost > share or calibrates) and self._timed_walked(cand, X):
                cost = self._cost([cand])
            if cost > self.infer_limit:  # the baseline is kept whatever it costs: never nothing
                cand.status = TOO_SLOW
                cand.error = (
                    f"predicts in {cost * 1e6:.3g} µs a row, over the infer_limit of "
                    f"{self.infer_limit * 1e6:.3g} µs"
                )
        return cand

    def _timed_walked(self, cand: _Candidate, X: Features) -> bool:
        """Time ``cand``'s validation predictions again with its LightGBM trees walked, as its
        saved model will predict them (2-9x faster than LightGBM's predictor, which timed them);
        whether it could. Only for a candidate that LightGBM's time puts over a third of the
        limit (over what one of :data:`MAX_MEMBERS` members may cost: an ensemble sums them),
        and for the first boosted one, whose cost per tree caps the rounds of the next: making
        walkers costs time too, and one under that share is under it walked."""
        boosters = [getattr(trainer, "booster_", None) for trainer in cand.trainers]
        if len(boosters) != len(self.folds) or not all(
            b is not None and compiled_forest(b) is not None for b in boosters
        ):
            return False
        cand.predict_s, cand.walked = 0.0, True
        for trainer, (_, valid) in zip(cand.trainers, self.folds, strict=True):
            p0 = time.perf_counter()
            self._predict(trainer, _take(X, valid))
            cand.predict_s += time.perf_counter() - p0
        return True

    def _round_cap(self, settings: Mapping[str, Any]) -> int | None:
        """With an ``infer_limit``: the most boosting rounds trees of these settings can grow and
        still predict within it (so that a candidate stops at the limit instead of growing past it
        and being thrown away), from the cost per tree measured on the boosted candidates so
        far; None without a limit or a measurement."""
        if self.infer_limit is None or "num_leaves" not in settings:
            return None
        per_tree = self._tree_cost(int(settings["num_leaves"]))
        if per_tree is None:
            return None
        tree_key = _preprocessing_key(self._model_type("boosted_tree"))
        spare = self.infer_limit - self.transform_s.get(tree_key, 0.0)
        return max(1, int(spare / self._refit_growth / (per_tree * self._trees_per_round)))

    @property
    def _trees_per_round(self) -> int:
        """Trees a boosting round grows: one per class for multiclass, else one."""
        return len(self.classes) if self.task == "multiclass" else 1

    @property
    def _refit_growth(self) -> float:
        """How many times the rounds early stopping found a boosted candidate grows when refitted
        on every row (1/sqrt of the share of rows it was trained on; see :meth:`_refit`)."""
        return float((len(self.folds[0][0]) / self.n) ** -0.5)

    @property
    def _validated_rows(self) -> int:
        """Rows a candidate's validation predicts: every row (cross-validation) or the holdout."""
        return max(sum(len(valid) for _, valid in self.folds), 1)

    def _tree_cost(self, leaves: int) -> float | None:
        """Seconds per row one tree of ``leaves`` leaves costs to predict: measured on the boosted
        candidate with the nearest number of leaves (among those timed walked, when any were: as
        the saved model predicts), scaled up by depth (log2 of the leaves) for bigger trees."""
        walked = any(c.walked for c in self.candidates if c.family == "boosted_tree")
        seen: list[tuple[float, float, int]] = []
        for c in self.candidates:
            if (
                c.family != "boosted_tree"
                or (walked and not c.walked)
                or c.status not in ("ok", TOO_SLOW)
                or not c.best_iterations
                or "num_leaves" not in c.settings
            ):
                continue
            trees = (float(np.mean(c.best_iterations)) + 1) * self._trees_per_round
            theirs = int(c.settings["num_leaves"])
            per_row = c.predict_s / self._validated_rows
            seen.append((abs(math.log(theirs / leaves)), per_row / trees, theirs))
        if not seen:
            return None
        _, cost, theirs = min(seen)
        return cost * max(1.0, math.log2(leaves + 1) / math.log2(theirs + 1))

    def _cost(self, members: Sequence[_Candidate]) -> float:
        """Estimated seconds per row to predict with ``members`` together, in batch on one
        thread: each one's time on its validation rows (boosted trees grown by the rounds the
        refit on every row adds), plus each distinct preprocessing's transform."""
        total = 0.0
        for c in members:
            boosted = c.family in BOOSTED and c.best_iterations
            total += c.predict_s / self._validated_rows * (self._refit_growth if boosted else 1.0)
        keys = {_preprocessing_key(c.model_type) for c in members}
        return total + sum(self.transform_s.get(k, 0.0) for k in keys)

    def _validate(
        self,
        cand: _Candidate,
        X: Features,
        categorical: list[int],
        folds: list[tuple[Array, Array]],
        *,
        deadline: float | None,
    ) -> _Validation:
        """``cand``'s settings trained on each fold's training rows and scored on its
        validation rows (``cand`` itself is left as it is)."""
        cls = get_trainer(cand.model_type)
        family = cand.family
        settings = {k: v for k, v in cand.settings.items() if k != "tpe_trial"}
        holdout = len(folds) == 1
        stopped: list[int] = []
        run = _Validation()

        def listener(_: Trainer, info: Any) -> None:
            if deadline is not None and time.perf_counter() > deadline:
                if not holdout:  # folds left untrained: the candidate cannot be scored
                    raise _TrialTimeout
                stopped.append(info.iteration)
                raise StopTraining  # one model: keep it as it stands, and score it

        oof: Array | None = None
        if family in LIBRARIES:  # once, seconds: not the candidate's own fit time
            importlib.import_module(LIBRARIES[family])
        t0 = time.perf_counter()
        try:
            with iteration_listener(listener), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for train, valid in folds:
                    train = self._affordable(family, X, train)
                    kwargs: dict[str, Any] = {"categorical": categorical}
                    y_train = self._labels(train)
                    if family in BOOSTED or family == "dnn":
                        kwargs["X_eval"] = _take(X, valid)
                        kwargs["y_eval"] = self._labels(valid)
                    trainer = cls(**settings).fit(_take(X, train), y_train, **kwargs)
                    run.trainers.append(trainer)
                    best = getattr(trainer, "best_iteration_", None)
                    if best is not None:
                        run.best_iterations.append(int(best))
                    p0 = time.perf_counter()
                    pred = self._predict(trainer, _take(X, valid))
                    run.predict_s += time.perf_counter() - p0
                    if oof is None:
                        oof = np.zeros((self.n, *pred.shape[1:]))
                    oof[valid] = pred
        except _TrialTimeout:
            run.status, run.error = "timeout", "stopped: it would have run past the budget"
        except (TrainingError, DataError, ValueError, np.linalg.LinAlgError) as e:
            run.status, run.error = "failed", str(e)
        run.fit_s = time.perf_counter() - t0 - run.predict_s
        if stopped and run.status == "ok":
            run.error = f"stopped at its time limit after {stopped[0] + 1} iteration(s)"
        if run.status == "ok" and oof is not None:
            run.prediction = oof[self._scored_rows()]
            s0 = time.perf_counter()
            run.score = self._score(run.prediction)
            self.score_s = max(self.score_s, time.perf_counter() - s0)
            if not math.isfinite(run.score):
                run.status, run.error = "failed", f"the {self.metric} is not finite"
        return run

    def _affordable(self, family: str, X: Features, rows: Array) -> Array:
        """The rows of ``rows`` a candidate trains on: a linear model's or DNN's dense matrix
        (one-hot: a column per category) grows with rows x columns, and so does its time: at
        most :data:`LINEAR_MAX_CELLS` cells of it. (A DNN given the one-hot codes: every row.)"""
        if family not in ("linear", "dnn") or isinstance(X, OneHotFeatures):
            return rows
        return self._subsample(rows, LINEAR_MAX_CELLS // max(X.shape[1], 1))

    def _subsample(self, rows: Array, cap: int) -> Array:
        """At most ``cap`` of ``rows`` (a seeded sample, in order)."""
        if len(rows) <= cap:
            return rows
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(rows, size=max(cap, 1), replace=False))

    def _labels(self, rows: Array) -> Array:
        return self.y[rows] if self.task == "regression" else self.y_raw[rows]

    def _scored_rows(self) -> Array:
        return np.sort(np.concatenate([valid for _, valid in self.folds]))

    def _predict(self, trainer: Trainer, X: Any) -> Array:
        if self.task == "regression":
            return np.asarray(trainer.predict(X), dtype=np.float64)
        proba = np.asarray(trainer.predict_proba(X), dtype=np.float64)  # type: ignore[attr-defined]
        known = np.asarray(trainer.classes_)  # type: ignore[attr-defined]
        if len(known) == len(self.classes):
            return proba
        out = np.zeros((X.shape[0], len(self.classes)))  # a fold that lacked a class
        out[:, np.searchsorted(self.classes, known)] = proba
        return out

    def _score(self, prediction: Array) -> float:
        return self.score_fn(self.y[self._scored_rows()], prediction)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.higher else a < b

    def _best(self) -> _Candidate | None:
        ranked = self._ranked()
        return ranked[0] if ranked else None

    # -- the run ----------------------------------------------------------------------------------

    def _left(self) -> float:
        return self.deadline - time.perf_counter()

    def _report(self, progress: Callable[[Progress], None] | None, cand: _Candidate) -> None:
        if progress is None:
            return
        best = self._best()
        progress(
            Progress(
                elapsed_s=time.perf_counter() - self.started,
                time_budget_s=self.budget,
                candidates=len(self.candidates),
                best_score=None if best is None else best.score,
                best_model_type=None if best is None else best.model_type,
                metric=self.metric,
                last_model_type=cand.model_type,
                last_status=cand.status,
            )
        )

    def run(self, progress: Callable[[Progress], None] | None) -> AutoMLResult:
        # 1. the baseline: small, always trained, whatever the budget says
        baseline_family = "boosted_tree" if "boosted_tree" not in self.exclude else "linear"
        baseline = (
            {
                "max_iterations": 30,
                "learn_rate": 0.2,
                "num_leaves": 15,
                "max_tree_depth": 16,
                "min_data_in_leaf": 5,
                "min_tree_child_weight": 1e-3,
                "l2_reg": 0.0,
                "early_stop": False,
                "seed": self.seed,
            }
            if baseline_family == "boosted_tree"
            else {"l2_reg": 1.0, "max_iterations": 10}
        )
        first = self._run_candidate(baseline_family, baseline, deadline=None)
        self._report(progress, first)
        if first.status != "ok":
            raise TrainingError(f"automl: even the baseline model failed: {first.error}")
        if (
            len(self.folds) > 1
            and self.n >= HOLDOUT_MIN_ROWS
            and first.fit_s + first.predict_s > CV_MAX_SHARE * self.budget
        ):
            self._to_holdout()
        if self._left() <= 0:
            self._note(
                f"the time budget ({self.budget:g} s) ran out with the baseline model; "
                "returning it: give a larger --time-budget for a better one"
            )
        # 2. the fixed plan, then TPE, each candidate with a share of the time left
        for family, settings in self._plan():
            if self._search_left() <= 0:
                break
            if family == "dnn" and self._search_left() < DNN_MIN_SECONDS:
                continue  # importing PyTorch alone takes seconds: not worth a small budget
            cand = self._run_candidate(family, settings, deadline=self._trial_deadline())
            self._report(progress, cand)
        if "boosted_tree" not in self.exclude and self._search_left() > 0:
            self._tpe(progress)
        self._recheck()
        # 3. + 4.
        model = self._final()
        elapsed = time.perf_counter() - self.started
        best_score = model.metrics["automl"]["validation_score"]
        return AutoMLResult(
            model=model,
            leaderboard=self._leaderboard(),
            task=self.task,
            metric=self.metric,
            best_score=best_score,
            validation=self.validation,
            elapsed_s=elapsed,
            warnings=list(self.notes),
        )

    def _search_left(self) -> float:
        return self._left() - self._reserve()

    def _reserve(self) -> float:
        """Time kept for the end: the recheck on fresh folds (see :meth:`_recheck`), ensemble
        selection, and refitting the likely members on every row when that is affordable."""
        return self._recheck_reserve() + self._end_reserve()

    def _end_reserve(self) -> float:
        """Ensemble selection (up to 25 rounds over the best ten: each a scoring, timed), the
        refit of the likely members on every row (capped as :data:`REFIT_MAX` says: the
        members that do not fit in it keep their models trained on the validation's training
        part), and :data:`END_MARGIN` of the budget for assembling the model and the estimates'
        error. (A flat 5 % of the budget left breast_cancer 4.3 s of its 60 idle: selection and
        refit took 0.1 s.) The cap is not a cliff: when the three best together would take
        more, the time for those that fit is still kept (on diamonds, a 16 s CatBoost refit
        beside two LightGBM ones went unrefitted while the reserve was all or nothing)."""
        ok = self._ranked()
        held_out = 1.0 - len(self.folds[0][0]) / self.n
        cap = REFIT_MAX * self.budget * held_out / 0.2  # REFIT_MAX is for a fifth held out
        planned = 0.0
        for cand in ok[:MAX_MEMBERS]:
            took = self._refit_estimate(cand)
            if planned + took <= cap:
                planned += took
        selection = 25 * min(len(ok), 10) * self.score_s
        return selection + planned + END_MARGIN * self.budget

    def _recheck_reserve(self) -> float:
        """Time for :meth:`_recheck`: none where the best candidate alone would take more than
        :data:`RECHECK_MAX` of the budget (it is then skipped), else the shortlist's, capped."""
        shortlist = self._shortlist()
        if len(self.folds) == 1 or not shortlist:
            return 0.0
        cap = RECHECK_MAX * self.budget
        if shortlist[0].fit_s + shortlist[0].predict_s > cap:
            return 0.0
        return min(sum(c.fit_s + c.predict_s for c in shortlist), cap)

    def _shortlist(self) -> list[_Candidate]:
        """The best :data:`RECHECK_TOP` candidates and each family's best, best first."""
        ok = self._ranked()
        chosen = ok[:RECHECK_TOP]
        families = {c.family for c in chosen}
        for c in ok[RECHECK_TOP:]:
            if c.family not in families:
                chosen.append(c)
                families.add(c.family)
        return chosen

    def _recheck(self) -> None:
        """With cross-validation, score the shortlist again on folds of a fresh shuffle, and make
        the final choice (best model, ensemble) on those scores alone. The search picked its best
        from hundreds of trials on one split, and part of that best's lead is the split's noise
        (on scikit-learn's diabetes, 353 rows: the search's best boosted trees led a linear model
        by 0.6 % in cross-validation and trailed it by 3 % on the test set). A candidate that
        does not fit in the time left keeps its first score and leaves the final choice; when
        the best one does not fit, nothing is rechecked (a pool of only the cheaper candidates
        would lose the best for want of time, not of merit)."""
        if len(self.folds) == 1:
            return
        folds = self._folds(self.seed + 1)
        for i, cand in enumerate(self._shortlist()):
            took = cand.fit_s + cand.predict_s
            if self._left() - self._end_reserve() < took:
                if i == 0:
                    return
                continue
            _, X, categorical = self._features(cand.model_type)
            run = self._validate(
                cand, X, categorical, folds, deadline=time.perf_counter() + 2 * took + 1.0
            )
            if run.status != "ok" or run.prediction is None:
                if i == 0:
                    return
                continue
            cand.prediction, cand.score, cand.rechecked = run.prediction, run.score, True
            cand.best_iterations += run.best_iterations

    def _pool(self) -> list[_Candidate]:
        """The candidates the final choice is made from: those rechecked, when any were; with an
        ``infer_limit``, those within it (the fastest, when none is)."""
        ok = [c for c in self.candidates if c.status == "ok" and c.prediction is not None]
        rechecked = [c for c in ok if c.rechecked]
        pool = rechecked or ok
        if self.infer_limit is None:
            return pool
        fits = [c for c in pool if self._cost([c]) <= self.infer_limit]
        if fits:
            return fits
        scored = [
            c for c in self.candidates if c.status in ("ok", TOO_SLOW) and c.prediction is not None
        ]
        # nothing fits: the fastest, the best of those within timing noise (25 %) of it
        fastest = min(self._cost([c]) for c in scored)
        return [c for c in scored if self._cost([c]) <= 1.25 * fastest]

    def _refit_estimate(self, cand: _Candidate) -> float:
        fraction = len(self.folds[0][0]) / self.n
        return float(cand.fit_s / len(self.folds) / fraction)

    def _trial_deadline(self) -> float:
        return time.perf_counter() + TRIAL_SHARE * max(self._search_left(), 0.0)

    def _tpe(self, progress: Callable[[Progress], None] | None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=5)
        study = optuna.create_study(
            direction="maximize" if self.higher else "minimize", sampler=sampler
        )
        dists = {
            "learn_rate": optuna.distributions.FloatDistribution(MIN_LEARN_RATE, 0.3, log=True),
            "num_leaves": optuna.distributions.IntDistribution(4, self._max_leaves, log=True),
            "min_data_in_leaf": optuna.distributions.IntDistribution(2, 128, log=True),
            "colsample_bytree": optuna.distributions.FloatDistribution(0.4, 1.0),
            "subsample": optuna.distributions.FloatDistribution(0.5, 1.0),
            "l2_reg": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True),
        }
        for cand in self.candidates:  # what the plan learnt seeds the sampler
            if (
                cand.family != "boosted_tree"
                or cand.status != "ok"
                or "num_leaves" not in cand.settings
            ):
                continue
            params = {k: cand.settings.get(k, 1.0) for k in dists}
            params["l2_reg"] = max(float(params["l2_reg"]), 1e-3)
            params["subsample"] = float(cand.settings.get("subsample", 1.0))
            params["colsample_bytree"] = float(cand.settings.get("colsample_bytree", 1.0))
            inside = all(
                dists[k].low <= v <= dists[k].high  # type: ignore[attr-defined]
                for k, v in params.items()
            )
            if inside:
                study.add_trial(
                    optuna.trial.create_trial(params=params, distributions=dists, value=cand.score)
                )
        while self._search_left() > 0:
            took = [c.fit_s for c in self.candidates if c.family == "boosted_tree" and c.fit_s > 0]
            if took and self._search_left() < 0.25 * float(np.median(took)):
                break  # too little time for a trial that could compete
            trial = study.ask(dists)
            settings = self._tpe_settings(trial)
            cand = self._run_candidate("boosted_tree", settings, deadline=self._trial_deadline())
            cand.settings["tpe_trial"] = trial.number
            if cand.status == "ok":
                study.tell(trial, cand.score)
            elif cand.status == TOO_SLOW:  # a value, not a failure: TPE learns to avoid these
                scores = [c.score for c in self.candidates if c.status == "ok"]
                study.tell(trial, min(scores) if self.higher else max(scores))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._report(progress, cand)

    # -- ensemble and final model -----------------------------------------------------------------

    def _ensemble(self) -> dict[int, float]:
        """Candidate id -> weight: greedy selection with replacement over the best ten, at most
        :data:`MAX_MEMBERS` distinct members, a step kept only when it validates better by
        :data:`ENSEMBLE_TOLERANCE` (of the score) than the best so far: prediction cost grows
        with every member, and tiny validation gains do not survive to the test set. With an
        ``infer_limit``, a new member is taken only while the members' costs sum within it."""
        ok = self._pool()
        ok.sort(key=lambda c: c.score, reverse=self.higher)
        pool = ok[:10]
        best = pool[0]
        counts: dict[int, int] = {}
        total: Array | None = None
        best_score = best.score
        chosen: dict[int, int] = {best.id: 1}
        for size in range(25):
            round_best: tuple[float, _Candidate, Array] | None = None
            for cand in pool:
                assert cand.prediction is not None
                if cand.id not in counts and (
                    len(counts) >= MAX_MEMBERS
                    or (
                        self.infer_limit is not None
                        and self._cost([*(c for c in pool if c.id in counts), cand])
                        > self.infer_limit
                    )
                ):
                    continue
                trial = (
                    cand.prediction
                    if total is None
                    else (total * size + cand.prediction) / (size + 1)
                )
                score = self._score(trial)
                if round_best is None or self._better(score, round_best[0]):
                    round_best = (score, cand, trial)
            if round_best is None:  # only the fastest is left, and it is over the limit
                break
            score, cand, total = round_best
            counts[cand.id] = counts.get(cand.id, 0) + 1
            margin = ENSEMBLE_TOLERANCE * max(abs(best_score), 1e-12)
            if self._better(score, best_score + (margin if self.higher else -margin)):
                best_score = score
                chosen = dict(counts)
        return {i: float(n) for i, n in chosen.items()}

    def _final(self) -> Model:
        best = (max if self.higher else min)(self._pool(), key=lambda c: c.score)
        weights = self._ensemble() if self.ensemble else {best.id: 1.0}
        members = [c for c in self.candidates if c.id in weights]
        for cand in members:
            cand.weight = weights[cand.id]
        if len(members) > 1:
            blended = np.zeros_like(best.prediction)
            for c in members:
                assert c.prediction is not None
                blended += c.prediction * c.weight
            score = self._score(blended / sum(c.weight for c in members))
        else:
            score = best.score
        cost = self._cost(members)
        if self.infer_limit is not None and cost > self.infer_limit:
            self._note(
                f"no candidate predicts within the infer_limit of {self.infer_limit * 1e6:.3g} µs "
                f"a row; returning the fastest, {cost * 1e6:.3g} µs a row: allow more, or give "
                "the search more time"
            )
        trainers = self._refit(members)
        for trainer in trainers:  # the model is made to predict: its trees' walkers, in time
            booster = getattr(trainer, "booster_", None)  # (the others are made once they pay)
            if booster is not None and (
                self.infer_limit is not None  # (its cost was measured walked: keep to that)
                or build_estimate(booster) <= self._left()
            ):
                compiled_forest(booster)
        parts: dict[str, tuple[FittedTransform, int]] = {}
        pieces: list[tuple[Trainer, str]] = []
        for cand, trainer in zip(members, trainers, strict=True):
            fitted, X, _ = self._features(cand.model_type)
            key = _preprocessing_key(cand.model_type)
            parts.setdefault(key, (fitted, X.shape[1]))
            pieces.append((trainer, key))
        board = self._leaderboard_rows()
        metrics = {
            "automl": {
                "task": self.task,
                "metric": self.metric,
                "validation": self.validation,
                "validation_score": score,
                "time_budget_s": self.budget,
                "elapsed_s": time.perf_counter() - self.started,
                "infer_limit": self.infer_limit,
                "predict_us_per_row": round(cost * 1e6, 3),
                "ensemble": [
                    {"candidate": c.id, "model_type": c.model_type, "weight": c.weight}
                    for c in members
                ],
                "leaderboard": board,
            }
        }
        if len(members) == 1:
            fitted = parts[pieces[0][1]][0]
            model = Model.assemble(
                trainers[0], fitted, table=self.table, label=self.target, metrics=metrics
            )
            return model
        keys = list(parts)
        stacked = StackedTransform([parts[k][0] for k in keys], [parts[k][1] for k in keys])
        ranges = dict(zip(keys, stacked.ranges, strict=True))
        ensemble_cls = get_trainer(
            "ensemble_regressor" if self.task == "regression" else "ensemble_classifier"
        )
        ensemble = ensemble_cls.from_fitted(  # type: ignore[attr-defined]
            [(t, ranges[k], c.weight) for (t, k), c in zip(pieces, members, strict=True)]
        )
        model = Model.assemble(
            ensemble, stacked, table=self.table, label=self.target, metrics=metrics
        )
        return model

    def _refit(self, members: list[_Candidate]) -> list[Trainer]:
        """Each member trained on every row while the time allows (boosted trees with the rounds
        early stopping found, at the learning rate they were validated with), the heaviest in
        the ensemble first; a member the time left does not allow keeps the model of its first
        fold (holdout: the only one), and a lighter one that still fits is refitted."""
        fraction = len(self.folds[0][0]) / self.n
        allowance = max(self._left(), 0.0) + 0.05 * self.budget
        out = [cand.trainers[0] for cand in members]
        kept: list[_Candidate] = []
        for i in sorted(range(len(members)), key=lambda i: -members[i].weight):
            cand = members[i]
            if self._refit_estimate(cand) > allowance:
                kept.append(cand)
                continue
            allowance -= self._refit_estimate(cand)
            settings = dict(cand.settings)
            settings.pop("tpe_trial", None)
            if cand.family in BOOSTED and cand.best_iterations:
                rounds = float(np.mean(cand.best_iterations)) + 1
                settings["max_iterations"] = max(1, round(rounds * self._refit_growth))
                settings["early_stop_rounds"] = None
                rate = getattr(cand.trainers[0], "learning_rate_", None)
                if settings.get("learn_rate") is None and rate is not None:
                    settings["learn_rate"] = rate  # CatBoost's own choice depends on the rounds
            elif cand.family == "dnn" and settings.get("early_stop_rounds") is not None:
                # the epochs the validation found best: no eval set is left to stop on
                settings["max_iterations"] = round(float(np.mean(cand.best_iterations))) + 1
                settings.update(early_stop_rounds=None, early_stop=False)
            _, X, categorical = self._features(cand.model_type)
            rows = self._affordable(cand.family, X, np.arange(self.n))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[i] = get_trainer(cand.model_type)(**settings).fit(
                        _take(X, rows), self._labels(rows), categorical=categorical
                    )
            except TrainingError as e:
                self._note(
                    f"refitting {cand.model_type} (candidate {cand.id}) on every row failed "
                    f"({e}); it keeps its model trained on the {fraction:.0%} of rows the "
                    "validation left"
                )
        if kept:
            which = ", ".join(f"{c.model_type} (candidate {c.id})" for c in kept)
            self._note(
                f"no time was left to refit {which} on every row: trained on the {fraction:.0%} "
                "of rows the validation left"
            )
        return out

    def _leaderboard_rows(self) -> list[dict[str, Any]]:
        ranked = sorted(  # the final choice's pool first (see _recheck), then the others
            self.candidates,
            key=lambda c: (
                c.status != "ok",
                not c.rechecked,
                -c.score if self.higher else c.score,
            ),
        )
        rows = []
        for rank, c in enumerate(ranked, start=1):
            rows.append(
                {
                    "rank": rank,
                    "candidate": c.id,
                    "model_type": c.model_type,
                    "settings": json.dumps(
                        {k: v for k, v in c.settings.items() if k != "tpe_trial"}, default=str
                    ),
                    "status": c.status,
                    "validation_score": c.score if c.status in ("ok", TOO_SLOW) else None,
                    "fit_time_s": round(c.fit_s, 4),
                    "predict_time_s": round(c.predict_s, 4),
                    "predict_us_per_row": (
                        round(self._cost([c]) * 1e6, 3) if c.status in ("ok", TOO_SLOW) else None
                    ),
                    "best_iteration": (
                        round(float(np.mean(c.best_iterations))) if c.best_iterations else None
                    ),
                    "ensemble_weight": c.weight,
                    "rechecked": c.rechecked,
                    "error": c.error,
                }
            )
        return rows

    def _leaderboard(self) -> pa.Table:
        rows = self._leaderboard_rows()
        schema = pa.schema(
            [
                ("rank", pa.int64()),
                ("candidate", pa.int64()),
                ("model_type", pa.string()),
                ("settings", pa.string()),
                ("status", pa.string()),
                ("validation_score", pa.float64()),
                ("fit_time_s", pa.float64()),
                ("predict_time_s", pa.float64()),
                ("predict_us_per_row", pa.float64()),
                ("best_iteration", pa.int64()),
                ("ensemble_weight", pa.float64()),
                ("rechecked", pa.bool_()),
                ("error", pa.string()),
            ]
        )
        return pa.Table.from_pylist(rows, schema=schema)


def detect_task(target: pa.ChunkedArray | pa.Array) -> Task:
    """The task a target column asks for: text, booleans and two-valued columns classify
    (``binary``, else ``multiclass``), integers with at most 20 distinct values are classes,
    other numbers are a ``regression``. Nulls do not count as a value."""
    t = target.type
    distinct = len(pc.unique(target).drop_null())
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if not numeric:
        return "binary" if distinct == 2 else "multiclass"
    if distinct == 2:
        return "binary"
    if pa.types.is_integer(t) and distinct <= 20:
        return "multiclass"
    return "regression"


def _take(X: Features, rows: Array) -> Any:
    """The rows ``rows`` of a matrix or of one-hot codes (``Any``: the trainer contract types
    ``X`` as a matrix; a trainer that ``fits_one_hot_features`` also takes the codes)."""
    return X.take(rows) if isinstance(X, OneHotFeatures) else X[rows]


def _preprocessing_key(model_type: str) -> str:
    """Candidates of one key share their automatic preprocessing (and its matrix)."""
    if model_type in ("linear_reg", "logistic_reg"):
        return "linear"
    return "dnn" if model_type.startswith("dnn") else "tree"


def leaderboard_of(model: Model) -> pa.Table | None:
    """The leaderboard saved in an AutoML model's metrics, or None for another model."""
    automl = model.metrics.get("automl") if isinstance(model.metrics, Mapping) else None
    if not automl:
        return None
    return pa.Table.from_pylist(automl["leaderboard"])
