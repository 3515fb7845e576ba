"""Gradient-boosted oblivious trees on CatBoost (extra ``catboost``), with BigQuery ML's option
names where it has one.

BigQuery ML has no CatBoost model; its boosted-tree option names are kept for what CatBoost
shares with them, with CatBoost's own defaults (its trees are symmetric: every node of a level
splits on the same condition, so a tree of depth d is d comparisons, which makes prediction
cheap):

=========================  ==========  ===================================================
option                     default     CatBoost parameter
=========================  ==========  ===================================================
``max_iterations``         1000        ``iterations`` (boosting rounds, one tree each; a
                                       multiclass tree has an output per class)
``learn_rate``             None        ``learning_rate``; None: CatBoost picks it from the
                                       rows and rounds (the rate it used is recorded)
``max_tree_depth``         6           ``depth`` (1-16)
``l2_reg``                 None        ``l2_leaf_reg``; None: CatBoost's (3), and only
                                       then does CatBoost pick ``learn_rate`` itself
``colsample_bylevel``      1.0         ``rsm`` (share of features tried per level)
``auto_class_weights``     false       row weights n / (k * n_class), as BigQuery ML's
``class_weights``          none        row weights by label (``{label: w}``; unnamed 1.0)
``early_stop_rounds``      None        with an eval set, ``od_type="Iter"``,
                                       ``od_wait``, and the best round kept
                                       (``use_best_model``); needs ``X_eval``/``y_eval``
``max_bin``                254         ``border_count`` (1-65535)
``num_threads``            1           ``thread_count`` (1: CatBoost otherwise takes every
                                       core, which is 30-120x slower on a busy machine)
``seed``                   0           ``random_seed``
=========================  ==========  ===================================================

Columns listed in ``categorical`` (Kiln's category codes) are CatBoost categorical features:
CatBoost encodes them itself with ordered target statistics (and one-hot for tiny ones); an
unseen category (code NaN) is a category CatBoost has not seen, as it should be. Missing numeric
values (NaN) go below every split (CatBoost's ``Min``).

One :class:`IterationInfo` is recorded per round (loss: log loss, or mean squared error for
regression, on the training rows; eval loss on the eval set). The model is CatBoost's own binary
format (``model.cbm``), which CatBoost's C++ parses; loading it executes nothing. CatBoost writes
no files of its own while training (``allow_writing_files`` is off).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import (
    Label,
    check_categorical,
    check_class_weights,
    check_eval_pair,
    check_labels,
    check_matrix,
    check_number,
    check_rows,
    class_codes,
    eval_codes,
    sample_weights,
)
from kiln.train._contract import IterationInfo, Trainer, record_iteration, register_trainer

if TYPE_CHECKING:
    import catboost

__all__ = ["CatBoostClassifier", "CatBoostRegressor"]

Array = np.ndarray[Any, np.dtype[Any]]

_MODEL_FILE = "model.cbm"
_UNSEEN = b"unseen"  # the category of a code the fit never saw (NaN)
_MAX_NAMED = 1 << 20
_names: Array = np.array([_UNSEEN], dtype=object)
"""CatBoost's name of each category code c at ``c + 1`` (``_UNSEEN`` first), grown on demand and
shared, so that predicting one row does not spell out thousands of names."""


def _code_names(top: int) -> Array:
    """:data:`_names` holding codes below ``top`` at least."""
    global _names
    names = _names
    if names.shape[0] <= top:
        size = max(top + 1, 2 * names.shape[0])
        names = np.array([_UNSEEN, *(str(i).encode() for i in range(size - 1))], dtype=object)
        _names = names  # (one reference swap: threads see the old array or the new one)
    return names


class _Recorder:
    """CatBoost callback (after each round): one :class:`IterationInfo` per round, told to the
    iteration listeners; a listener's :class:`StopTraining` ends the fit with the model kept,
    any other exception is held and raised again once CatBoost has returned."""

    def __init__(self, trainer: CatBoostTrainer, learning_rate: float | None) -> None:
        self.trainer = trainer
        self.learning_rate = learning_rate
        self.rows: list[IterationInfo] = []
        self.error: BaseException | None = None
        self.started = time.perf_counter()

    def after_iteration(self, info: Any) -> bool:
        now = time.perf_counter()
        learn = info.metrics.get("learn", {})
        valid = info.metrics.get("validation", {})
        loss_name = self.trainer._loss_name
        square = 2 if loss_name == "RMSE" else 1  # record squared error, as LightGBM's l2
        eval_loss = valid[loss_name][-1] ** square if loss_name in valid else None
        row = IterationInfo(
            iteration=len(self.rows),
            loss=float(learn[loss_name][-1] ** square) if loss_name in learn else float("nan"),
            eval_loss=None if eval_loss is None else float(eval_loss),
            learning_rate=self.learning_rate,
            duration_ms=round((now - self.started) * 1000),
        )
        self.started = now
        try:
            stop = record_iteration(self.trainer, self.rows, row)
        except Exception as exc:  # raised again after fit: CatBoost would wrap it
            self.error = exc
            return False
        return not stop


class CatBoostTrainer(Trainer):
    """Shared fit/predict/save of the two CatBoost trainers."""

    predicts_in_native_code = False
    # (CatBoost's Cython holds the GIL while it hashes the category names into its Pool, ~40 %
    # of a prediction: transforming the next chunk beside it measured no faster, 0.78 s against
    # 0.77 s for 300,000 rows of the training bench)

    model_: catboost.CatBoost
    n_features_in_: int
    feature_importance_: Array
    best_iteration_: int
    learning_rate_: float
    """The learning rate the fit used: ``learn_rate``, or the one CatBoost chose."""
    categorical_: list[int]
    classes_: Array  # classifiers: the labels, in the order of the probabilities' columns
    _loss_name = "RMSE"

    def __init__(
        self,
        *,
        max_iterations: int = 1000,
        learn_rate: float | None = None,
        max_tree_depth: int = 6,
        l2_reg: float | None = None,
        colsample_bylevel: float = 1.0,
        auto_class_weights: bool = False,
        class_weights: Mapping[Label, float] | None = None,
        early_stop_rounds: int | None = None,
        max_bin: int = 254,
        num_threads: int = 1,
        seed: int = 0,
    ) -> None:
        mt = self.model_type
        p: dict[str, Any] = {
            "max_iterations": int(
                check_number(mt, "max_iterations", max_iterations, minimum=1, integer=True)
            ),
            "learn_rate": None
            if learn_rate is None
            else check_number(mt, "learn_rate", learn_rate, minimum=0.0, exclusive_minimum=True),
            "max_tree_depth": int(
                check_number(
                    mt, "max_tree_depth", max_tree_depth, minimum=1, maximum=16, integer=True
                )
            ),
            "l2_reg": None if l2_reg is None else check_number(mt, "l2_reg", l2_reg, minimum=0.0),
            "colsample_bylevel": check_number(
                mt,
                "colsample_bylevel",
                colsample_bylevel,
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
            ),
            "early_stop_rounds": None
            if early_stop_rounds is None
            else int(
                check_number(mt, "early_stop_rounds", early_stop_rounds, minimum=1, integer=True)
            ),
            "max_bin": int(
                check_number(mt, "max_bin", max_bin, minimum=1, maximum=65535, integer=True)
            ),
            "num_threads": int(
                check_number(mt, "num_threads", num_threads, minimum=1, integer=True)
            ),
            "seed": int(check_number(mt, "seed", seed, minimum=0, integer=True)),
        }
        if self.task == "classification":
            p["auto_class_weights"], p["class_weights"] = check_class_weights(
                mt, auto_class_weights, class_weights
            )
        elif auto_class_weights or class_weights:
            raise TrainingError(
                f"{mt}: auto_class_weights and class_weights apply to classifiers only"
            )
        self._params = p

    def get_params(self) -> dict[str, Any]:
        return dict(self._params)

    # -- the data CatBoost reads --------------------------------------------------------------

    def _pool(self, X: Array, label: Array | None = None, weight: Array | None = None) -> Any:
        """``X`` as CatBoost reads it: the numeric columns (float32, CatBoost's own precision),
        then the categorical ones as byte strings of their codes (an unseen code, NaN, its own)."""
        import catboost

        cats = self.categorical_
        numeric = self._catboost_order(X.shape[1])[: X.shape[1] - len(cats)]
        num = np.ascontiguousarray(X[:, numeric], dtype=np.float32) if numeric else None
        cat = None
        if cats:
            codes = X[:, cats]
            unseen = ~np.isfinite(codes) | (codes < 0)
            index = np.where(unseen, -1, codes).astype(np.int64)
            top = int(index.max(initial=0)) + 1
            if top <= _MAX_NAMED:
                cat = _code_names(top)[index + 1]
            else:  # codes no Kiln transform makes: name only those present
                present, where = np.unique(index, return_inverse=True)
                spelled = [_UNSEEN if c < 0 else str(c).encode() for c in present.tolist()]
                cat = np.array(spelled, dtype=object)[where.reshape(index.shape)]
        data = catboost.FeaturesData(num_feature_data=num, cat_feature_data=cat)
        return catboost.Pool(data, label=label, weight=weight)

    # -- fit --------------------------------------------------------------------------------

    def _targets(self, y: object) -> tuple[Array, Array | None]:
        """What CatBoost learns (values; classifiers: class codes) and each row's class weight
        (None: all 1)."""
        return check_labels(self.model_type, y, "y", numeric=True), None

    def _eval_targets(self, y: object) -> Array:
        return check_labels(self.model_type, y, "y_eval", numeric=True)

    def _catboost_params(self) -> dict[str, Any]:
        p = self._params
        params: dict[str, Any] = {
            "iterations": p["max_iterations"],
            "depth": p["max_tree_depth"],
            "rsm": p["colsample_bylevel"],
            "border_count": p["max_bin"],
            "thread_count": p["num_threads"],
            "random_seed": p["seed"],
            "allow_writing_files": False,
            "verbose": False,
            "loss_function": self._loss_name,
        }
        if p["learn_rate"] is not None:
            params["learning_rate"] = p["learn_rate"]
        if p["l2_reg"] is not None:  # (set, it turns CatBoost's own choice of rate off)
            params["l2_leaf_reg"] = p["l2_reg"]
        return params

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
        import catboost

        mt = self.model_type
        self._forget(
            "model_", "classes_", "n_features_in_", "feature_importance_", "learning_rate_"
        )
        patience = self._params["early_stop_rounds"]
        check_eval_pair(mt, X_eval, y_eval, patience)
        X = check_matrix(mt, X, "X", allow_nan=True)
        if y is None:
            raise TrainingError(f"{mt}: fit needs labels y")
        target, weight = self._targets(y)
        check_rows(mt, X, target)
        if sample_weight is not None:
            given = sample_weights(mt, sample_weight, X.shape[0])
            weight = given if weight is None else weight * given
        self.categorical_ = check_categorical(mt, categorical, X.shape[1])
        params = self._catboost_params()
        train = self._pool(X, target, weight)
        eval_set = None
        if X_eval is not None and y_eval is not None:
            X_eval = check_matrix(mt, X_eval, "X_eval", n_features=X.shape[1], allow_nan=True)
            target_eval = self._eval_targets(y_eval)
            check_rows(mt, X_eval, target_eval, ("X_eval", "y_eval"))
            eval_set = self._pool(X_eval, target_eval)
            if patience is not None:
                params.update(od_type="Iter", od_wait=patience, use_best_model=True)
            else:
                params["use_best_model"] = False
        recorder = _Recorder(self, self._params["learn_rate"])
        model = catboost.CatBoost(params)
        try:
            model.fit(train, eval_set=eval_set, callbacks=[recorder])
        except catboost.CatBoostError as exc:
            raise TrainingError(f"{mt}: CatBoost refused to train: {exc}") from exc
        if recorder.error is not None:
            raise recorder.error
        rate = float(model.get_all_params().get("learning_rate", self._params["learn_rate"] or 0))
        for row in recorder.rows:  # the rate CatBoost chose, when it chose
            row.learning_rate = rate
        self.learning_rate_ = rate
        self.model_ = model
        self.n_features_in_ = X.shape[1]
        self.training_info_ = recorder.rows
        self.best_iteration_ = int(model.tree_count_) - 1  # the rounds kept (the best)
        self.feature_importance_ = self._importance(model)
        return self

    def _importance(self, model: Any) -> Array:
        """CatBoost's importance (PredictionValuesChange) in the input's column order."""
        out = np.zeros(self.n_features_in_)
        out[self._catboost_order(self.n_features_in_)] = np.asarray(
            model.get_feature_importance(), dtype=np.float64
        )
        return out

    # -- predict ----------------------------------------------------------------------------

    def _raw(self, X: Array, kind: str) -> Array:
        self._check_fitted("model_")
        X = check_matrix(self.model_type, X, "X", n_features=self.n_features_in_, allow_nan=True)
        return np.asarray(
            self.model_.predict(
                self._pool(X), prediction_type=kind, thread_count=self._params["num_threads"]
            ),
            dtype=np.float64,
        )

    def predict(self, X: Array) -> Array:
        return self._raw(X, "RawFormulaVal")

    def contributions(self, X: Array) -> Array:
        """Tree SHAP values (CatBoost's ``ShapValues``) in raw-score space (log-odds for binary,
        each class's softmax margin for more): rows x (features + 1), the last column the expected
        value, each row summing to the raw prediction; rows x classes x (features + 1) for more
        than two classes. Features in the input's column order."""
        self._check_fitted("model_")
        X = check_matrix(self.model_type, X, "X", n_features=self.n_features_in_, allow_nan=True)
        values = np.asarray(
            self.model_.get_feature_importance(
                self._pool(X), type="ShapValues", thread_count=self._params["num_threads"]
            ),
            dtype=np.float64,
        )
        out = np.empty_like(values)
        out[..., self._catboost_order(self.n_features_in_)] = values[..., :-1]
        out[..., -1] = values[..., -1]
        return out

    def _catboost_order(self, n_features: int) -> list[int]:
        """The input's column of each of CatBoost's features: numeric first, then categorical."""
        cats = set(self.categorical_)
        return [i for i in range(n_features) if i not in cats] + self.categorical_

    # -- save / load ------------------------------------------------------------------------

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("model_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model_.save_model(str(folder / _MODEL_FILE), format="cbm")
        saved: dict[str, Any] = {
            "model_type": self.model_type,
            "params": self.get_params(),
            "model_file": _MODEL_FILE,
            "n_features": self.n_features_in_,
            "categorical": self.categorical_,
            "training_info": [row.to_dict() for row in self.training_info_],
            "best_iteration": self.best_iteration_,
            "learning_rate": self.learning_rate_,
        }
        if self.task == "classification":
            saved["classes"] = self.classes_.tolist()
        return saved

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        import catboost

        trainer = cls(**saved["params"])
        path = Path(folder) / _MODEL_FILE
        model = catboost.CatBoost()
        try:
            model.load_model(str(path), format="cbm")
        except (OSError, catboost.CatBoostError) as exc:
            raise TrainingError(f"{cls.model_type}: cannot load {path}: {exc}") from exc
        trainer.model_ = model
        trainer.n_features_in_ = int(saved["n_features"])
        trainer.categorical_ = [int(c) for c in saved["categorical"]]
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        trainer.best_iteration_ = int(saved["best_iteration"])
        trainer.learning_rate_ = float(saved["learning_rate"])
        trainer.feature_importance_ = trainer._importance(model)
        if "classes" in saved:
            trainer.classes_ = np.asarray(saved["classes"])
        return trainer


@register_trainer
class CatBoostRegressor(CatBoostTrainer):
    """``catboost_regressor``: CatBoost's boosted oblivious trees on squared error."""

    model_type = "catboost_regressor"
    task = "regression"


@register_trainer
class CatBoostClassifier(CatBoostTrainer):
    """``catboost_classifier``: CatBoost's boosted oblivious trees on log loss, binary or
    multiclass; labels of any type (kept in ``classes_``)."""

    model_type = "catboost_classifier"
    task = "classification"

    @property
    def _loss_name(self) -> str:  # type: ignore[override]
        return "Logloss" if len(self.classes_) == 2 else "MultiClass"

    def _targets(self, y: object) -> tuple[Array, Array | None]:
        p = self._params
        self.classes_, codes, weights = class_codes(
            self.model_type,
            check_labels(self.model_type, y, "y"),
            auto_class_weights=p["auto_class_weights"],
            class_weights=p["class_weights"],
        )
        weighted = p["auto_class_weights"] or p["class_weights"]
        return codes.astype(np.int64), weights if weighted else None

    def _eval_targets(self, y: object) -> Array:
        labels = check_labels(self.model_type, y, "y_eval")
        return eval_codes(self.model_type, self.classes_, labels).astype(np.int64)

    def predict_proba(self, X: Array) -> Array:
        """Class probabilities, rows x classes, columns in ``classes_`` order."""
        return self._raw(X, "Probability")

    def predict(self, X: Array) -> Array:
        """Labels (as in ``y``): the most probable class of each row."""
        proba = self.predict_proba(X)  # (first: it says when the trainer is not fitted)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])
