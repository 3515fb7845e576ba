"""Boosted trees and random forests on LightGBM, with BigQuery ML's option names and defaults.

BigQuery ML trains these models with XGBoost; Kiln trains them with LightGBM. Each option keeps
BigQuery ML's name (lower-cased) and default and is translated to LightGBM as follows:

=========================  ==============================  ======================================
option (BigQuery ML)       default (boosted / forest)      LightGBM parameter
=========================  ==============================  ======================================
``max_iterations``         20 / —                          ``num_iterations`` (boosting rounds)
``num_parallel_tree``      1 / 100                         forest: ``num_iterations`` of
                                                           ``boosting="rf"`` (one tree each);
                                                           boosted: must be 1 (LightGBM grows one
                                                           tree per round)
``booster_type``           ``GBTREE`` / —                  ``boosting``: ``gbdt`` or ``dart``
``dart_normalize_type``    ``TREE`` / —                    ``xgboost_dart_mode``: ``TREE`` → true
                                                           (XGBoost's weighting), ``FOREST`` →
                                                           false (LightGBM's 1/(k+1) weighting,
                                                           the nearest to XGBoost's ``forest``)
``dropout``                0.0 / —                         ``drop_rate`` (DART only)
``learn_rate``             0.3 / —                         ``learning_rate``
``max_tree_depth``         6 / 15                          ``max_depth``, and ``num_leaves`` =
                                                           2 ** depth (XGBoost grows depth-wise;
                                                           this lets a leaf-wise tree reach the
                                                           same size), at most the row count,
                                                           unless Kiln's ``num_leaves`` is set
``min_tree_child_weight``  1 / 1                           ``min_sum_hessian_in_leaf`` (with
                                                           Kiln's ``min_data_in_leaf``, default 1:
                                                           XGBoost has no row minimum)
``min_split_loss``         0.0 / 0.0                       ``min_gain_to_split``
``l1_reg``                 0.0 / 0.0                       ``lambda_l1``
``l2_reg``                 1.0 / 1.0                       ``lambda_l2``
``subsample``              1.0 / 0.8                       ``bagging_fraction``, with
                                                           ``bagging_freq`` = 1 when below 1;
                                                           in (0, 1] / (0, 1): a forest must
                                                           bag its rows, as BigQuery ML says
``colsample_bytree``       1.0 / 1.0                       ``feature_fraction``
``colsample_bylevel``      1.0 / 1.0                       multiplied into
                                                           ``feature_fraction_bynode`` (leaf-wise
                                                           trees have no levels)
``colsample_bynode``       1.0 / 0.8                       ``feature_fraction_bynode``
``tree_method``            ``AUTO``                        LightGBM always uses histograms:
                                                           ``EXACT`` raises ``max_bin`` to 1023
                                                           while Kiln's ``max_bin`` is left at
                                                           255; the others keep ``max_bin``
``early_stop``             true                            a callback: stop after the first
``min_rel_progress``       0.01                            round whose relative loss improvement
                                                           is below ``min_rel_progress`` (on the
                                                           eval set when given, else training);
                                                           Kiln's ``early_stop_rounds`` replaces
                                                           this rule when set
``auto_class_weights``     false                           row weights n / (k * n_class)
``class_weights``          none                            row weights by label (``{label: w}``,
                                                           labels as strings; unnamed ones 1.0)
``enable_global_explain``  false                           kept for ``ML.GLOBAL_EXPLAIN``; gain
                                                           importances and tree SHAP
                                                           (:meth:`contributions`) are always on
=========================  ==============================  ======================================

Kiln's own settings (not BigQuery ML's; validated from ``_NATIVE_OPTIONS``):

=========================  ========  ==============================================================
option                     default   meaning
=========================  ========  ==============================================================
``num_threads``            1         LightGBM's ``num_threads``: 1 because LightGBM otherwise takes
                                     every core and slows down by 30-120x when another process is
                                     busy; raise it on a machine of your own
``seed``                   0         LightGBM's ``seed`` (and DART's ``drop_seed``)
``num_leaves``             None      None: 2 ** ``max_tree_depth``, at most the row count (the rule
                                     above); an int in [2, 131072] is LightGBM's ``num_leaves`` as
                                     is (``max_depth`` still caps the tree)
``min_data_in_leaf``       1         LightGBM's ``min_data_in_leaf`` (>= 1)
``early_stop_rounds``      None      boosted trees only: with an eval set (``X_eval``/``y_eval``),
                                     stop once the eval loss has not improved for that many rounds
                                     (>= 1) and keep the best round: the model (saved and
                                     predicting) holds the trees up to ``best_iteration_``, while
                                     ``training_info_`` records every round that ran. It replaces
                                     ``early_stop``/``min_rel_progress`` for the fit; without an
                                     eval set the fit is a TrainingError; DART refuses it
``max_bin``                255       LightGBM's ``max_bin`` in [2, 65535]; left at 255 with
                                     ``tree_method='EXACT'`` it becomes 1023 (set it to anything
                                     else and that value is used whatever ``tree_method`` says)
``cat_smooth``             10.0      LightGBM's ``cat_smooth`` (>= 0) for ``categorical`` columns
``min_data_per_group``     100       LightGBM's ``min_data_per_group`` (>= 1)
``max_cat_threshold``      32        LightGBM's ``max_cat_threshold`` (>= 1)
=========================  ========  ==============================================================

Training is reproducible: ``deterministic`` and ``force_col_wise`` are on. Every fit sets
``best_iteration_``, the 0-based index in ``training_info_`` of the last round the model keeps:
the best round under ``early_stop_rounds``, the last round (or tree) otherwise.

A random forest is one BigQuery ML iteration of ``num_parallel_tree`` trees; Kiln grows it with
LightGBM's ``rf`` mode one tree per LightGBM iteration and records one training-info row per tree
(``learning_rate`` None). ``early_stop`` never stops a forest (as in BigQuery ML, where the forest
is one iteration), and DART is never stopped early (dropping trees makes the loss non-monotone).

Missing values (NaN) are routed natively; columns listed in ``categorical`` must hold
non-negative integer codes and are split on as categories. The fitted model is LightGBM's text
format (``model.txt``): loading it parses text and executes nothing.
"""

from __future__ import annotations

import abc
import ctypes
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import (
    check_categorical,
    check_choice,
    check_eval_pair,
    check_labels,
    check_matrix,
    check_number,
    check_rows,
    sample_weights,
)
from kiln.train._contract import IterationInfo, Trainer, record_iteration, register_trainer
from kiln.train._forest import compiled_forest, lightgbm_spent, paid_forest

if TYPE_CHECKING:
    import lightgbm

__all__ = [
    "BoostedTreeClassifier",
    "BoostedTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
]

Array = np.ndarray[Any, np.dtype[Any]]

_MODEL_FILE = "model.txt"
_MAX_LEAVES = 131072
_TREE_METHODS = ("AUTO", "EXACT", "APPROX", "HIST")
_BOOSTER_TYPES = ("GBTREE", "DART")
_DART_NORMALIZE_TYPES = ("TREE", "FOREST")
_CLASS_WEIGHT_OPTIONS = ("auto_class_weights", "class_weights")
_DEFAULT_MAX_BIN = 255
_EXACT_MAX_BIN = 1023  # tree_method EXACT: finer histograms, nearer XGBoost's exact splits
FEW_ROWS = 8
"""Where Kiln's tree walker (:mod:`kiln.train._forest`) is not made (yet): up to this many rows,
prediction takes LightGBM's single-row entry row by row (``LGBM_BoosterPredictForMatSingleRowFast``:
about 1 us a row, where ``Booster.predict`` spends some 20 us of Python and parameter parsing on
every call); the same C++ predictor, so the same numbers."""


class _SingleRow:
    """LightGBM's fast single-row predictor for one booster: a ``FastConfig`` made once (its
    parameters parsed once), then one C call per row, through buffers of its own. Calls are
    serialised by a lock (the buffers are shared; the C API does not promise either that a
    ``FastConfig`` may be used by several threads at once). It predicts with the trees the booster
    has when it is made: a trainer's ``booster_`` is complete when assigned and never trained
    further (a refit assigns a new booster, which gets its own)."""

    def __init__(self, booster: lightgbm.Booster, num_threads: int) -> None:
        from lightgbm.basic import (  # type: ignore[attr-defined]  # the C API's fast entry
            _LIB,
            _c_str,
            _safe_call,
        )

        self.ncol = int(booster.num_feature())
        self.outputs = int(booster.num_model_per_iteration())
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL: what Booster.predict gives by default
                ctypes.c_int(0),  # start_iteration
                ctypes.c_int(-1),  # num_iteration: all
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(self.ncol),
                _c_str(f"num_threads={num_threads}"),
                ctypes.byref(handle),
            )
        )
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)
        # int (FastConfigHandle fast_config, const void* data, int64_t* out_len, double* out)
        prototype = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
        )
        address = ctypes.cast(_LIB.LGBM_BoosterPredictForMatSingleRowFast, ctypes.c_void_p).value
        if not address:
            raise OSError("LightGBM has no LGBM_BoosterPredictForMatSingleRowFast")
        self._call = prototype(address)
        self._check = _safe_call
        self._handle = handle.value
        self._row = np.empty(self.ncol)
        self._out = np.empty(self.outputs)
        self._length = np.empty(1, dtype=np.int64)
        self._addresses = (
            self._row.ctypes.data,
            self._length.ctypes.data,
            self._out.ctypes.data,
        )
        self._lock = threading.Lock()

    def predict(self, X: Array) -> Array:
        n = X.shape[0]
        out = np.empty((n, self.outputs))
        row, length, result = self._addresses
        with self._lock:
            for i in range(n):
                self._row[:] = X[i]
                code = self._call(self._handle, row, length, result)
                if code:
                    self._check(code)  # raises LightGBM's error
                out[i] = self._out
        return out[:, 0] if self.outputs == 1 else out


# boosters -> their single-row predictor (weak keys: a predictor lives as long as its booster)
_SINGLE_ROW: weakref.WeakKeyDictionary[Any, _SingleRow | None] = weakref.WeakKeyDictionary()


class _Bounds(NamedTuple):
    """The valid values of one of Kiln's own numeric settings."""

    minimum: float
    maximum: float | None = None
    integer: bool = True
    optional: bool = False  # None is accepted (and means "Kiln's rule")


# Kiln's own LightGBM settings of all four trainers, each checked against its bounds here (the
# one place): the module docstring says what each does.
_NATIVE_OPTIONS: dict[str, _Bounds] = {
    "num_leaves": _Bounds(2, _MAX_LEAVES, optional=True),
    "min_data_in_leaf": _Bounds(1),
    "max_bin": _Bounds(2, 65535),
    "cat_smooth": _Bounds(0.0, integer=False),
    "min_data_per_group": _Bounds(1),
    "max_cat_threshold": _Bounds(1),
}
# ... and those of boosted trees only.
_BOOSTED_NATIVE_OPTIONS: dict[str, _Bounds] = {
    "early_stop_rounds": _Bounds(1, optional=True),
}


def _settings(local_variables: dict[str, Any]) -> dict[str, Any]:
    """An ``__init__``'s keyword arguments, from its ``locals()``."""
    return {k: v for k, v in local_variables.items() if k not in ("self", "__class__")}


def _check_native(
    model_type: str, settings: dict[str, Any], table: Mapping[str, _Bounds]
) -> dict[str, Any]:
    """The settings named in ``table``, each checked against its bounds (ints kept as ints)."""
    out: dict[str, Any] = {}
    for option, bounds in table.items():
        value = settings[option]
        if value is None and bounds.optional:
            out[option] = None
            continue
        number = check_number(
            model_type,
            option,
            value,
            minimum=bounds.minimum,
            maximum=bounds.maximum,
            integer=bounds.integer,
        )
        out[option] = int(number) if bounds.integer else number
    return out


class _Recorder:
    """LightGBM callback (after each iteration): one :class:`IterationInfo` per round, and
    either BigQuery ML's early stop on ``min_rel_progress`` or Kiln's ``early_stop_rounds``
    (``patience``: stop once the eval loss has not improved for that many rounds)."""

    order = 30
    before_iteration = False

    def __init__(
        self,
        trainer: Trainer,
        *,
        learning_rate: float | None,
        min_rel_progress: float | None,
        patience: int | None = None,
    ) -> None:
        self.trainer = trainer
        self.learning_rate = learning_rate
        self.min_rel_progress = min_rel_progress
        self.patience = patience
        self.rows: list[IterationInfo] = []
        self.best = -1  # index in rows of the lowest eval loss so far (with patience)
        self.best_results: list[Any] = []
        self.started = time.perf_counter()

    def start(self, env: Any) -> None:
        self.started = time.perf_counter()

    def __call__(self, env: Any) -> None:
        import lightgbm

        duration_ms = round((time.perf_counter() - self.started) * 1000)
        results = {str(r[0]): float(r[2]) for r in env.evaluation_result_list}
        row = IterationInfo(
            iteration=len(self.rows),
            loss=results["train"],
            eval_loss=results.get("eval"),
            learning_rate=self.learning_rate,
            duration_ms=duration_ms,
        )
        previous = self.rows[-1] if self.rows else None
        stop = record_iteration(self.trainer, self.rows, row)
        if self.patience is not None:
            self._watch_best(row, env)
            if stop:  # asked to stop: keep the best round so far
                raise lightgbm.callback.EarlyStopException(self.best, self.best_results)
            return
        if stop:
            raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list)
        if self.min_rel_progress is None or previous is None:
            return
        before = previous.eval_loss if row.eval_loss is not None else previous.loss
        now = row.eval_loss if row.eval_loss is not None else row.loss
        assert before is not None
        assert now is not None
        if before - now < self.min_rel_progress * abs(before):
            raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    def _watch_best(self, row: IterationInfo, env: Any) -> None:
        """``early_stop_rounds``: remember the best round; stop ``patience`` rounds after it."""
        import lightgbm

        assert self.patience is not None
        assert row.eval_loss is not None  # fit refuses early_stop_rounds without an eval set
        best_loss = self.rows[self.best].eval_loss if self.best >= 0 else None
        if best_loss is None or row.eval_loss < best_loss:
            self.best = row.iteration
            self.best_results = list(env.evaluation_result_list)
        elif row.iteration - self.best >= self.patience:
            raise lightgbm.callback.EarlyStopException(self.best, self.best_results)


class _Starter:
    """LightGBM callback (before each iteration): starts the recorder's clock."""

    order = 0
    before_iteration = True

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def __call__(self, env: Any) -> None:
        self.recorder.start(env)


class _LightGBMTrees(Trainer):
    """Shared fit/predict/save of the four tree trainers; subclasses set the options."""

    predicts_in_native_code = True

    booster_: lightgbm.Booster
    n_features_in_: int
    feature_importance_: Array
    classes_: Array
    best_iteration_: int
    """0-based index in ``training_info_`` of the last round the model keeps (the best round
    under ``early_stop_rounds``, else the last one that ran)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._params = self._validate(settings)

    # -- settings ---------------------------------------------------------------------------

    def _validate(self, s: dict[str, Any]) -> dict[str, Any]:
        mt = self.model_type
        out = dict(s)
        for option in ("colsample_bytree", "colsample_bylevel", "colsample_bynode", "subsample"):
            out[option] = check_number(
                mt, option, s[option], minimum=0.0, maximum=1.0, exclusive_minimum=True
            )
        for option in ("l1_reg", "l2_reg", "min_split_loss", "min_tree_child_weight"):
            out[option] = check_number(mt, option, s[option], minimum=0.0)
        out["max_tree_depth"] = int(
            check_number(
                mt, "max_tree_depth", s["max_tree_depth"], minimum=1, maximum=20, integer=True
            )
        )
        out["num_threads"] = int(
            check_number(mt, "num_threads", s["num_threads"], minimum=1, integer=True)
        )
        out["seed"] = int(check_number(mt, "seed", s["seed"], minimum=0, integer=True))
        out["min_rel_progress"] = check_number(
            mt, "min_rel_progress", s["min_rel_progress"], minimum=0.0
        )
        out["tree_method"] = check_choice(mt, "tree_method", s["tree_method"], _TREE_METHODS)
        out.update(_check_native(mt, s, _NATIVE_OPTIONS))
        for option in ("early_stop", "enable_global_explain", "auto_class_weights"):
            if not isinstance(s[option], bool):
                raise TrainingError(f"{mt}: {option} must be true or false, got {s[option]!r}")
        out["class_weights"] = self._validate_class_weights(s["class_weights"])
        if self.task != "classification" and (s["auto_class_weights"] or s["class_weights"]):
            raise TrainingError(
                f"{mt}: auto_class_weights and class_weights apply to classifiers only"
            )
        if s["auto_class_weights"] and s["class_weights"]:
            raise TrainingError(f"{mt}: set auto_class_weights or class_weights, not both")
        return out

    def _validate_class_weights(self, value: object) -> dict[str, float] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise TrainingError(
                f"{self.model_type}: class_weights must be a mapping {{label: weight}},"
                f" got {value!r}"
            )
        return {
            str(label): check_number(
                self.model_type, f"class_weights[{label!r}]", weight, minimum=0.0
            )
            for label, weight in value.items()
        }

    def get_params(self) -> dict[str, Any]:
        params = dict(self._params)
        if self.task != "classification":
            for option in _CLASS_WEIGHT_OPTIONS:
                params.pop(option, None)
        return params

    def _common_lightgbm_params(self, n_rows: int) -> dict[str, Any]:
        p = self._params
        depth = p["max_tree_depth"]
        num_leaves = p["num_leaves"]
        if num_leaves is None:  # as many leaves as a depth-wise tree of max_tree_depth
            num_leaves = max(2, min(2**depth, _MAX_LEAVES, n_rows))
        max_bin = p["max_bin"]
        if p["tree_method"] == "EXACT" and max_bin == _DEFAULT_MAX_BIN:
            max_bin = _EXACT_MAX_BIN
        return {
            "verbosity": -1,
            "num_threads": p["num_threads"],
            "deterministic": True,
            "force_col_wise": True,
            "seed": p["seed"],
            "max_depth": depth,
            "num_leaves": num_leaves,
            "min_data_in_leaf": p["min_data_in_leaf"],
            "min_sum_hessian_in_leaf": p["min_tree_child_weight"],
            "min_gain_to_split": p["min_split_loss"],
            "lambda_l1": p["l1_reg"],
            "lambda_l2": p["l2_reg"],
            "feature_fraction": p["colsample_bytree"],
            "feature_fraction_bynode": p["colsample_bylevel"] * p["colsample_bynode"],
            "bagging_fraction": p["subsample"],
            "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
            "max_bin": max_bin,
            "cat_smooth": p["cat_smooth"],
            "min_data_per_group": p["min_data_per_group"],
            "max_cat_threshold": p["max_cat_threshold"],
        }

    @abc.abstractmethod
    def _family_params(self, n_rows: int) -> tuple[dict[str, Any], int, float | None, bool]:
        """LightGBM parameters of the family, rounds, learning rate to record, early stop."""

    # -- fit --------------------------------------------------------------------------------

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
        import lightgbm

        mt = self.model_type
        self._forget(
            "booster_", "classes_", "n_features_in_", "feature_importance_", "best_iteration_"
        )
        patience: int | None = self._params.get("early_stop_rounds")
        check_eval_pair(mt, X_eval, y_eval, patience)
        X = check_matrix(mt, X, "X", allow_nan=True)
        if y is None:
            raise TrainingError(f"{mt}: fit needs labels y")
        target = self._encode_target(y, "y", fitting=True)
        check_rows(mt, X, target)
        weight = self._row_weights(X, target, sample_weight)
        columns = check_categorical(mt, categorical, X.shape[1])

        params, rounds, learning_rate, early_stop = self._family_params(X.shape[0])
        params.update(self._objective())
        train = lightgbm.Dataset(
            X, target, weight=weight, categorical_feature=columns or "auto", free_raw_data=True
        )
        valid_sets, valid_names = [train], ["train"]
        if X_eval is not None and y_eval is not None:
            X_eval = check_matrix(mt, X_eval, "X_eval", n_features=X.shape[1], allow_nan=True)
            target_eval = self._encode_target(y_eval, "y_eval", fitting=False)
            check_rows(mt, X_eval, target_eval, ("X_eval", "y_eval"))
            valid_sets.append(lightgbm.Dataset(X_eval, target_eval, reference=train))
            valid_names.append("eval")

        recorder = _Recorder(
            self,
            learning_rate=learning_rate,
            min_rel_progress=(
                self._params["min_rel_progress"] if early_stop and patience is None else None
            ),
            patience=patience,
        )
        try:
            booster = lightgbm.train(
                params,
                train,
                num_boost_round=rounds,
                valid_sets=valid_sets,
                valid_names=valid_names,
                callbacks=[_Starter(recorder), recorder],
            )
        except lightgbm.basic.LightGBMError as exc:
            raise TrainingError(f"{mt}: LightGBM refused to train: {exc}") from exc
        best = len(recorder.rows) - 1
        if patience is not None:
            best = recorder.best
            if best + 1 < booster.current_iteration():  # keep the trees up to the best round
                booster = lightgbm.Booster(
                    model_str=booster.model_to_string(num_iteration=best + 1)
                )
        self.booster_ = booster
        self.n_features_in_ = X.shape[1]
        self.training_info_ = recorder.rows
        self.best_iteration_ = best
        self.feature_importance_ = np.asarray(
            booster.feature_importance(importance_type="gain"), dtype=np.float64
        )
        return self

    def _objective(self) -> dict[str, Any]:
        return {"objective": "regression", "metric": "l2"}

    def _encode_target(self, y: object, name: str, *, fitting: bool) -> Array:
        return check_labels(self.model_type, y, name, numeric=True)

    def _row_weights(self, X: Array, target: Array, sample_weight: Array | None) -> Array | None:
        if sample_weight is None:
            return None
        return sample_weights(self.model_type, sample_weight, X.shape[0])

    # -- predict ----------------------------------------------------------------------------

    def _raw(self, X: Array, **kwargs: Any) -> Array:
        self._check_fitted("booster_")
        X = check_matrix(self.model_type, X, "X", n_features=self.n_features_in_, allow_nan=True)
        threads = int(self._params["num_threads"])
        if kwargs:  # leaf indices, contributions: LightGBM's
            result = self.booster_.predict(X, num_iteration=-1, num_threads=threads, **kwargs)
            return np.asarray(result, dtype=np.float64)
        forest = paid_forest(self.booster_)
        if forest is not None:
            return forest.predict(X, threads)
        t0 = time.perf_counter()
        single = self._single_row() if X.shape[0] <= FEW_ROWS else None
        if single is not None:
            result = single.predict(X)
        else:
            result = self.booster_.predict(X, num_iteration=-1, num_threads=threads)
        lightgbm_spent(self.booster_, time.perf_counter() - t0)
        return np.asarray(result, dtype=np.float64)

    def _single_row(self) -> _SingleRow | None:
        booster = self.booster_
        try:
            return _SINGLE_ROW[booster]
        except KeyError:
            pass
        try:
            single: _SingleRow | None = _SingleRow(booster, int(self._params["num_threads"]))
        except Exception:  # a LightGBM without the entry: Booster.predict serves
            single = None
        if single is not None and single.ncol != self.n_features_in_:
            single = None
        _SINGLE_ROW[booster] = single
        return single

    def predict(self, X: Array) -> Array:
        return self._raw(X)

    def contributions(self, X: Array) -> Array:
        """Tree SHAP values in raw-score space (log-odds for classifiers): rows x (features + 1),
        the last column the expected value, each row summing to the raw prediction; for more than
        two classes rows x classes x (features + 1). For a random forest they are averaged over
        its trees, as its prediction is (LightGBM reports their sum)."""
        values = self._raw(X, pred_contrib=True)
        if self.booster_.params.get("boosting") == "rf":
            values = values / max(int(self.booster_.current_iteration()), 1)
        width = self.n_features_in_ + 1
        if values.shape[1] == width:
            return values
        return values.reshape(values.shape[0], -1, width)

    # -- save / load ------------------------------------------------------------------------

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("booster_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _MODEL_FILE).write_text(self.booster_.model_to_string(num_iteration=-1))
        saved: dict[str, Any] = {
            "model_type": self.model_type,
            "params": self.get_params(),
            "model_file": _MODEL_FILE,
            "n_features": self.n_features_in_,
            "training_info": [row.to_dict() for row in self.training_info_],
            "best_iteration": self.best_iteration_,
        }
        if self.task == "classification":
            saved["classes"] = self.classes_.tolist()
        return saved

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        import lightgbm

        trainer = cls(**saved["params"])
        path = Path(folder) / _MODEL_FILE
        try:
            text = path.read_text()
            booster = lightgbm.Booster(model_str=text)
        except (OSError, lightgbm.basic.LightGBMError) as exc:
            raise TrainingError(f"{cls.model_type}: cannot load {path}: {exc}") from exc
        compiled_forest(booster, text)  # a model is loaded to predict: its walker now
        trainer.booster_ = booster
        trainer.n_features_in_ = int(saved["n_features"])
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        # models saved before best_iteration_ existed kept every round
        trainer.best_iteration_ = int(saved.get("best_iteration", len(trainer.training_info_) - 1))
        trainer.feature_importance_ = np.asarray(
            booster.feature_importance(importance_type="gain"), dtype=np.float64
        )
        if "classes" in saved:
            trainer.classes_ = np.asarray(saved["classes"])
        return trainer


class _Classifier(_LightGBMTrees):
    """Labels of any type (kept in ``classes_``), coded 0..k-1 for LightGBM."""

    def _encode_target(self, y: object, name: str, *, fitting: bool) -> Array:
        labels = check_labels(self.model_type, y, name)
        if fitting:
            try:
                classes, codes = np.unique(labels, return_inverse=True)
            except TypeError as exc:
                raise TrainingError(
                    f"{self.model_type}: {name} mixes label types that cannot be ordered: {exc}"
                ) from exc
            if len(classes) < 2:
                raise TrainingError(
                    f"{self.model_type}: {name} has a single class ({classes[0]!r}); a classifier"
                    " needs at least two"
                )
            self.classes_ = classes
            return codes.astype(np.float64)
        index = {label: code for code, label in enumerate(self.classes_.tolist())}
        unknown = sorted({str(v) for v in labels.tolist() if v not in index})
        if unknown:
            raise TrainingError(
                f"{self.model_type}: {name} has label(s) not seen in y: {', '.join(unknown[:5])}"
            )
        return np.array([index[v] for v in labels.tolist()], dtype=np.float64)

    def _objective(self) -> dict[str, Any]:
        k = len(self.classes_)
        if k == 2:
            return {"objective": "binary", "metric": "binary_logloss"}
        return {"objective": "multiclass", "num_class": k, "metric": "multi_logloss"}

    def _row_weights(self, X: Array, target: Array, sample_weight: Array | None) -> Array | None:
        weight = super()._row_weights(X, target, sample_weight)
        codes = target.astype(np.int64)
        k = len(self.classes_)
        if self._params["auto_class_weights"]:
            counts = np.bincount(codes, minlength=k).astype(np.float64)
            per_class = len(codes) / (k * counts)
        elif self._params["class_weights"]:
            given = self._params["class_weights"]
            names = [str(c) for c in self.classes_.tolist()]
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise TrainingError(
                    f"{self.model_type}: class_weights names label(s) not in y: {unknown};"
                    f" labels are {names}"
                )
            per_class = np.array([given.get(name, 1.0) for name in names])
        else:
            return weight
        by_row = per_class[codes]
        return by_row if weight is None else weight * by_row

    def predict_proba(self, X: Array) -> Array:
        """Class probabilities, rows x classes, columns in ``classes_`` order."""
        p = self._raw(X)
        if p.ndim == 1:
            both = np.empty((len(p), 2))  # (np.column_stack, without its cost on one row)
            both[:, 0] = 1.0 - p
            both[:, 1] = p
            return both
        return p

    def predict(self, X: Array) -> Array:
        """Labels (as in ``y``): the most probable class of each row."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


class _BoostedTrees(_LightGBMTrees):
    def __init__(
        self,
        *,
        max_iterations: int = 20,
        learn_rate: float = 0.3,
        booster_type: str = "GBTREE",
        dart_normalize_type: str = "TREE",
        dropout: float = 0.0,
        num_parallel_tree: int = 1,
        max_tree_depth: int = 6,
        min_tree_child_weight: float = 1,
        min_split_loss: float = 0.0,
        l1_reg: float = 0.0,
        l2_reg: float = 1.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        colsample_bylevel: float = 1.0,
        colsample_bynode: float = 1.0,
        tree_method: str = "AUTO",
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        auto_class_weights: bool = False,
        class_weights: Mapping[str, float] | None = None,
        enable_global_explain: bool = False,
        num_leaves: int | None = None,
        min_data_in_leaf: int = 1,
        early_stop_rounds: int | None = None,
        max_bin: int = _DEFAULT_MAX_BIN,
        cat_smooth: float = 10.0,
        min_data_per_group: int = 100,
        max_cat_threshold: int = 32,
        num_threads: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(_settings(locals()))

    def _validate(self, s: dict[str, Any]) -> dict[str, Any]:
        out = super()._validate(s)
        mt = self.model_type
        out.update(_check_native(mt, s, _BOOSTED_NATIVE_OPTIONS))
        out["max_iterations"] = int(
            check_number(mt, "max_iterations", s["max_iterations"], minimum=1, integer=True)
        )
        out["learn_rate"] = check_number(
            mt, "learn_rate", s["learn_rate"], minimum=0.0, exclusive_minimum=True
        )
        out["booster_type"] = check_choice(mt, "booster_type", s["booster_type"], _BOOSTER_TYPES)
        out["dart_normalize_type"] = check_choice(
            mt, "dart_normalize_type", s["dart_normalize_type"], _DART_NORMALIZE_TYPES
        )
        out["dropout"] = check_number(mt, "dropout", s["dropout"], minimum=0.0, maximum=1.0)
        out["num_parallel_tree"] = int(
            check_number(mt, "num_parallel_tree", s["num_parallel_tree"], minimum=1, integer=True)
        )
        if out["num_parallel_tree"] != 1:
            raise TrainingError(
                f"{mt}: num_parallel_tree={s['num_parallel_tree']} (a boosted random forest) is not"
                " supported by the LightGBM backend; use 1, or a random_forest model"
            )
        if out["early_stop_rounds"] is not None and out["booster_type"] == "DART":
            raise TrainingError(
                f"{mt}: early_stop_rounds does not apply to booster_type DART (DART reweighs"
                " earlier trees every round, so there is no best round to keep); use GBTREE or"
                " leave early_stop_rounds unset"
            )
        return out

    def _family_params(self, n_rows: int) -> tuple[dict[str, Any], int, float | None, bool]:
        p = self._params
        params = self._common_lightgbm_params(n_rows)
        params["learning_rate"] = p["learn_rate"]
        dart = p["booster_type"] == "DART"
        params["boosting"] = "dart" if dart else "gbdt"
        if dart:
            params["drop_rate"] = p["dropout"]
            params["xgboost_dart_mode"] = p["dart_normalize_type"] == "TREE"
            params["drop_seed"] = p["seed"]
        return params, p["max_iterations"], p["learn_rate"], p["early_stop"] and not dart


class _RandomForest(_LightGBMTrees):
    def __init__(
        self,
        *,
        num_parallel_tree: int = 100,
        max_tree_depth: int = 15,
        min_tree_child_weight: float = 1,
        min_split_loss: float = 0.0,
        l1_reg: float = 0.0,
        l2_reg: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 1.0,
        colsample_bylevel: float = 1.0,
        colsample_bynode: float = 0.8,
        tree_method: str = "AUTO",
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        auto_class_weights: bool = False,
        class_weights: Mapping[str, float] | None = None,
        enable_global_explain: bool = False,
        num_leaves: int | None = None,
        min_data_in_leaf: int = 1,
        max_bin: int = _DEFAULT_MAX_BIN,
        cat_smooth: float = 10.0,
        min_data_per_group: int = 100,
        max_cat_threshold: int = 32,
        num_threads: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(_settings(locals()))

    def _validate(self, s: dict[str, Any]) -> dict[str, Any]:
        out = super()._validate(s)
        mt = self.model_type
        out["num_parallel_tree"] = int(
            check_number(mt, "num_parallel_tree", s["num_parallel_tree"], minimum=2, integer=True)
        )
        # BigQuery ML: "greater than 0 and less than 1.0"; LightGBM's rf mode bags rows too
        out["subsample"] = check_number(
            mt,
            "subsample",
            s["subsample"],
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        return out

    def _family_params(self, n_rows: int) -> tuple[dict[str, Any], int, float | None, bool]:
        params = self._common_lightgbm_params(n_rows)
        params["boosting"] = "rf"
        return params, self._params["num_parallel_tree"], None, False


@register_trainer
class BoostedTreeClassifier(_Classifier, _BoostedTrees):
    """``boosted_tree_classifier``: gradient-boosted trees (LightGBM ``gbdt`` or ``dart``)."""

    model_type = "boosted_tree_classifier"
    task = "classification"


@register_trainer
class BoostedTreeRegressor(_BoostedTrees):
    """``boosted_tree_regressor``: gradient-boosted trees on squared error."""

    model_type = "boosted_tree_regressor"
    task = "regression"


@register_trainer
class RandomForestClassifier(_Classifier, _RandomForest):
    """``random_forest_classifier``: bagged trees averaged (LightGBM ``rf``)."""

    model_type = "random_forest_classifier"
    task = "classification"


@register_trainer
class RandomForestRegressor(_RandomForest):
    """``random_forest_regressor``: bagged trees averaged (LightGBM ``rf``) on squared error."""

    model_type = "random_forest_regressor"
    task = "regression"
