"""``linear_reg`` and ``logistic_reg``: generalised linear models, as BigQuery ML trains them.

What is minimised (``s``: the row weights, ``sample_weight`` times the class weights;
``S = sum(s)``)::

    J(w, b) = ( sum_i s_i * loss_i(x_i . w + b)  +  l1_reg * |w|_1  +  l2_reg * |w|_2^2 ) / S

``loss_i`` is the squared error for ``linear_reg``, the cross-entropy (sigmoid for two classes,
softmax for more) for ``logistic_reg``. The intercept is never penalised. BigQuery ML does not
document how it scales its penalties; Kiln puts them on the scale of the *summed* loss, the way
scikit-learn's ``Ridge(alpha=l2_reg)`` does, so that ``NORMAL_EQUATION`` solves exactly
``(X'SX + l2_reg I) w = X'Sy`` (centred). Equivalences, unweighted, ``n`` rows:
``Ridge(alpha=l2_reg)``, ``Lasso(alpha=l1_reg / (2n))``, ``LogisticRegression(C=1 / (2 l2_reg))``.

Optimisation is batch (proximal) gradient descent in standardised coordinates (centred when
``fit_intercept``, divided by each feature's standard deviation) on that same objective: a
diagonal preconditioning that changes the path, not the optimum; the weights are reported in the
features' own units. L1 is a proximal step (soft-thresholding, ISTA), so weights reach exactly
zero. ``LINE_SEARCH`` backtracks (Armijo, halving) from ``ls_init_learn_rate`` for the first
iteration and from twice the previous step afterwards; ``CONSTANT`` uses ``learn_rate``.

``training_info_`` holds one row per iteration: ``loss`` is ``J`` (penalty included, so it never
rises under line search), ``eval_loss`` the mean unpenalised loss on ``X_eval`` (unweighted),
``learning_rate`` the step taken (in standardised units). With ``early_stop``, training stops
after the first iteration whose relative improvement of the eval loss (the training loss when no
eval set is given) is below ``min_rel_progress``.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import (
    Label,
    check_bool,
    check_choice,
    check_class_weights,
    check_features,
    check_labels,
    check_matrix,
    check_number,
    check_rows,
    class_codes,
    elapsed_ms,
    eval_codes,
    sample_weights,
)
from kiln.train._contract import (
    Array,
    IterationInfo,
    Task,
    Trainer,
    record_iteration,
    register_trainer,
)
from kiln.transform import OneHotFeatures

__all__ = ["LinearRegTrainer", "LogisticRegTrainer"]

OPTIMIZE_STRATEGIES = ("AUTO_STRATEGY", "BATCH_GRADIENT_DESCENT", "NORMAL_EQUATION")
LEARN_RATE_STRATEGIES = ("LINE_SEARCH", "CONSTANT")
# BigQuery ML's AUTO_STRATEGY: the normal equation unless L1 is asked for, there are more than
# this many features, or fewer than ten rows per feature.
NORMAL_EQUATION_MAX_FEATURES = 10_000
_MAX_HALVINGS = 60
_FILE = "glm.npz"

# loss(Z) -> (sum of weighted losses, d(sum)/dZ); Z is rows x outputs
LossFn = Callable[[Array], tuple[float, Array]]


class _GLM(Trainer):
    """Settings, gradient descent, weights and save/load shared by the two GLMs."""

    accepts_one_hot_features = True

    def __init__(
        self,
        *,
        optimize_strategy: str = "AUTO_STRATEGY",
        learn_rate_strategy: str = "LINE_SEARCH",
        learn_rate: float = 0.1,
        ls_init_learn_rate: float = 0.1,
        l1_reg: float = 0.0,
        l2_reg: float = 0.0,
        max_iterations: int = 20,
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        fit_intercept: bool = True,
    ) -> None:
        mt = self.model_type
        self.optimize_strategy = check_choice(
            mt, "optimize_strategy", optimize_strategy, OPTIMIZE_STRATEGIES
        )
        self.learn_rate_strategy = check_choice(
            mt, "learn_rate_strategy", learn_rate_strategy, LEARN_RATE_STRATEGIES
        )
        self.learn_rate = check_number(
            mt, "learn_rate", learn_rate, minimum=0.0, exclusive_minimum=True
        )
        self.ls_init_learn_rate = check_number(
            mt, "ls_init_learn_rate", ls_init_learn_rate, minimum=0.0, exclusive_minimum=True
        )
        self.l1_reg = check_number(mt, "l1_reg", l1_reg, minimum=0.0)
        self.l2_reg = check_number(mt, "l2_reg", l2_reg, minimum=0.0)
        self.max_iterations = int(
            check_number(mt, "max_iterations", max_iterations, minimum=1, integer=True)
        )
        self.early_stop = check_bool(mt, "early_stop", early_stop)
        self.min_rel_progress = check_number(mt, "min_rel_progress", min_rel_progress, minimum=0.0)
        self.fit_intercept = check_bool(mt, "fit_intercept", fit_intercept)
        if self.optimize_strategy == "NORMAL_EQUATION" and self.l1_reg > 0:
            raise TrainingError(
                f"{mt}: l1_reg cannot be used with optimize_strategy='NORMAL_EQUATION';"
                " use BATCH_GRADIENT_DESCENT or AUTO_STRATEGY"
            )

    # -- subclasses -------------------------------------------------------------------------------

    @abc.abstractmethod
    def _targets(self, y: Array) -> tuple[Array, Array]:
        """The target matrix (rows x outputs) and each row's class weight (ones for regression)."""

    @abc.abstractmethod
    def _loss_fn(self, T: Array, s: Array) -> LossFn:
        """The weighted loss summed over rows, and its gradient, for targets ``T``."""

    @abc.abstractmethod
    def _initial_intercept(self, T: Array, s: Array) -> Array:
        """Where gradient descent starts the intercept (the best constant model)."""

    @abc.abstractmethod
    def _eval_targets(self, y: Array) -> Array:
        """The target matrix for evaluation labels (classes learned from ``y``)."""

    # -- fitting ----------------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {
            "optimize_strategy": self.optimize_strategy,
            "learn_rate_strategy": self.learn_rate_strategy,
            "learn_rate": self.learn_rate,
            "ls_init_learn_rate": self.ls_init_learn_rate,
            "l1_reg": self.l1_reg,
            "l2_reg": self.l2_reg,
            "max_iterations": self.max_iterations,
            "early_stop": self.early_stop,
            "min_rel_progress": self.min_rel_progress,
            "fit_intercept": self.fit_intercept,
        }

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
        mt = self.model_type
        Xm = check_matrix(mt, X)
        if y is None:
            raise TrainingError(f"{mt}: fit needs the label column y")
        yv = check_labels(mt, y, numeric=self.task == "regression")
        check_rows(mt, Xm, yv)
        T, class_w = self._targets(yv)
        s = class_w * sample_weights(mt, sample_weight, Xm.shape[0])
        eval_data: tuple[Array, Array] | None = None
        if X_eval is not None or y_eval is not None:
            if X_eval is None or y_eval is None:
                raise TrainingError(f"{mt}: give both X_eval and y_eval, or neither")
            Xe = check_matrix(mt, X_eval, "X_eval", n_features=Xm.shape[1])
            ye = check_labels(mt, y_eval, "y_eval", numeric=self.task == "regression")
            check_rows(mt, Xe, ye, ("X_eval", "y_eval"))
            eval_data = (Xe, self._eval_targets(ye))

        self.optimize_strategy_ = self._strategy(Xm.shape)
        S = float(s.sum())
        mu = (s @ Xm) / S if self.fit_intercept else np.zeros(Xm.shape[1])
        sigma = np.sqrt((s @ (Xm - mu) ** 2) / S)
        sigma[sigma <= 1e-12 * max(1.0, float(np.abs(mu).max(initial=0.0)))] = 1.0
        Z = (Xm - mu) / sigma
        if self.optimize_strategy_ == "NORMAL_EQUATION":
            started = time.perf_counter()
            V, b = self._normal_equation(Z, T, s, sigma)
            self.training_info_ = []
            loss = self._objective(Z, T, s, sigma, V, b)
            self._set_weights(V, b, mu, sigma)
            eval_loss = self._eval_loss(*eval_data) if eval_data is not None else None
            record_iteration(
                self,
                self.training_info_,
                IterationInfo(0, loss, eval_loss, None, elapsed_ms(started)),
            )
        else:
            self._gradient_descent(Z, T, s, sigma, mu, eval_data)
        return self

    def _strategy(self, shape: tuple[int, ...]) -> str:
        if self.optimize_strategy != "AUTO_STRATEGY":
            if self.optimize_strategy == "NORMAL_EQUATION" and self.task != "regression":
                raise TrainingError(
                    f"{self.model_type}: optimize_strategy='NORMAL_EQUATION' applies to"
                    " linear_reg only; use BATCH_GRADIENT_DESCENT or AUTO_STRATEGY"
                )
            return self.optimize_strategy
        rows, features = shape
        if (
            self.task == "regression"
            and self.l1_reg == 0
            and features <= NORMAL_EQUATION_MAX_FEATURES
            and rows >= 10 * features
        ):
            return "NORMAL_EQUATION"
        return "BATCH_GRADIENT_DESCENT"

    def _normal_equation(self, Z: Array, T: Array, s: Array, sigma: Array) -> tuple[Array, Array]:
        root = np.sqrt(s)[:, None]
        b = (s @ T) / s.sum() if self.fit_intercept else np.zeros(T.shape[1])
        A = root * Z
        rhs = root * (T - b)
        if self.l2_reg > 0:
            A = np.vstack([A, np.diag(np.sqrt(self.l2_reg) / sigma)])
            rhs = np.vstack([rhs, np.zeros((Z.shape[1], T.shape[1]))])
        V = np.linalg.lstsq(A, rhs, rcond=None)[0]
        return V, b

    def _objective(self, Z: Array, T: Array, s: Array, sigma: Array, V: Array, b: Array) -> float:
        total, _ = self._loss_fn(T, s)(Z @ V + b)
        return (total + self._penalty(V, sigma)) / float(s.sum())

    def _penalty(self, V: Array, sigma: Array) -> float:
        W = V / sigma[:, None]
        return float(self.l1_reg * np.abs(W).sum() + self.l2_reg * (W * W).sum())

    def _gradient_descent(
        self,
        Z: Array,
        T: Array,
        s: Array,
        sigma: Array,
        mu: Array,
        eval_data: tuple[Array, Array] | None,
    ) -> None:
        S = float(s.sum())
        loss_fn = self._loss_fn(T, s)
        l2_scale = (2.0 * self.l2_reg / S) / (sigma**2)  # d(l2 term)/dV, per feature
        l1_scale = (self.l1_reg / S) / sigma  # soft-threshold per unit step, per feature
        b_mask = 1.0 if self.fit_intercept else 0.0

        def smooth(V: Array, b: Array) -> tuple[float, Array, Array]:
            total, dZ = loss_fn(Z @ V + b)
            value = total / S + float((0.5 * l2_scale[:, None] * V * V).sum())
            gV = Z.T @ dZ / S + l2_scale[:, None] * V
            gb = b_mask * dZ.sum(axis=0) / S
            return value, gV, gb

        def l1(V: Array) -> float:
            return float((l1_scale[:, None] * np.abs(V)).sum())

        def prox(V: Array, step: float) -> Array:
            if self.l1_reg == 0:
                return V
            cut = step * l1_scale[:, None]
            return np.sign(V) * np.maximum(np.abs(V) - cut, 0.0)

        V = np.zeros((Z.shape[1], T.shape[1]))
        b = self._initial_intercept(T, s) * b_mask
        f, gV, gb = smooth(V, b)
        loss = f + l1(V)
        self._set_weights(V, b, mu, sigma)
        previous = self._eval_loss(*eval_data) if eval_data is not None else loss
        line_search = self.learn_rate_strategy == "LINE_SEARCH"
        step = self.ls_init_learn_rate if line_search else self.learn_rate
        self.training_info_ = []
        for iteration in range(self.max_iterations):
            started = time.perf_counter()
            if line_search and iteration > 0:
                step *= 2.0
            for _ in range(_MAX_HALVINGS):
                V_new = prox(V - step * gV, step)
                b_new = b - step * gb
                f_new, gV_new, gb_new = smooth(V_new, b_new)
                if not line_search:
                    break
                dV, db = V_new - V, b_new - b
                decrease = float((gV * dV).sum() + (gb * db).sum())
                quadratic = float((dV * dV).sum() + (db * db).sum()) / (2.0 * step)
                if np.isfinite(f_new) and f_new <= f + decrease + quadratic + 1e-12 * abs(f):
                    break
                step *= 0.5
            if not np.isfinite(f_new):
                raise TrainingError(
                    f"{self.model_type}: the loss diverged at iteration {iteration} with"
                    f" learn_rate={step:g}; lower learn_rate or use"
                    " learn_rate_strategy='LINE_SEARCH'"
                )
            V, b, f, gV, gb = V_new, b_new, f_new, gV_new, gb_new
            loss = f + l1(V)
            self._set_weights(V, b, mu, sigma)
            eval_loss = self._eval_loss(*eval_data) if eval_data is not None else None
            if record_iteration(
                self,
                self.training_info_,
                IterationInfo(iteration, loss, eval_loss, step, elapsed_ms(started)),
            ):
                break  # asked to stop: the weights of this iteration are set
            current = eval_loss if eval_loss is not None else loss
            progress = (previous - current) / max(abs(previous), 1e-300)
            previous = current
            if self.early_stop and progress < self.min_rel_progress:
                break

    def _set_weights(self, V: Array, b: Array, mu: Array, sigma: Array) -> None:
        W = V / sigma[:, None]
        self._W = W
        self._b = b - mu @ W

    def _eval_loss(self, X: Array, T: Array) -> float:
        total, _ = self._loss_fn(T, np.ones(X.shape[0]))(X @ self._W + self._b)
        return total / float(X.shape[0])

    def _scores(self, X: Array | OneHotFeatures) -> Array:
        self._check_fitted("_W", "training_info_")
        # (one-hot blocks held as codes: a weight lookup per block and row)
        result: Array = check_features(self.model_type, X, n_features=self._W.shape[0]) @ self._W
        return result + self._b

    # -- weights ----------------------------------------------------------------------------------

    @property
    def coef_(self) -> Array:
        """Weights in the features' units: ``(n_features,)``, or ``(n_features, n_classes)``
        for multiclass ``logistic_reg``."""
        self._check_fitted("_W")
        return self._W[:, 0].copy() if self._W.shape[1] == 1 else self._W.copy()

    @property
    def intercept_(self) -> float | Array:
        self._check_fitted("_b")
        return float(self._b[0]) if self._b.shape[0] == 1 else self._b.copy()

    # -- save / load ------------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _restore_extra(self, saved: dict[str, Any]) -> None:
        return None

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("_W", "training_info_")
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / _FILE, weights=self._W, intercept=self._b)
        return {
            "model_type": self.model_type,
            "params": self.get_params(),
            "file": _FILE,
            "optimize_strategy": self.optimize_strategy_,
            "training_info": [row.to_dict() for row in self.training_info_],
            **self._extra_state(),
        }

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        trainer = cls(**saved["params"])
        with np.load(folder / saved["file"], allow_pickle=False) as data:
            trainer._W = np.asarray(data["weights"], dtype=np.float64)
            trainer._b = np.asarray(data["intercept"], dtype=np.float64)
        trainer.optimize_strategy_ = str(saved["optimize_strategy"])
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        trainer._restore_extra(saved)
        return trainer


@register_trainer
class LinearRegTrainer(_GLM):
    """BigQuery ML's ``linear_reg``: least squares with optional L1/L2 penalties."""

    model_type: ClassVar[str] = "linear_reg"
    task: ClassVar[Task] = "regression"

    def _targets(self, y: Array) -> tuple[Array, Array]:
        return y.astype(np.float64)[:, None], np.ones(y.shape[0])

    def _eval_targets(self, y: Array) -> Array:
        return y.astype(np.float64)[:, None]

    def _initial_intercept(self, T: Array, s: Array) -> Array:
        result: Array = (s @ T) / s.sum()
        return result

    def _loss_fn(self, T: Array, s: Array) -> LossFn:
        def loss(Z: Array) -> tuple[float, Array]:
            r = Z - T
            return float(s @ (r[:, 0] ** 2)), 2.0 * s[:, None] * r

        return loss

    def predict(self, X: Array | OneHotFeatures) -> Array:
        result: Array = self._scores(X)[:, 0]
        return result

    @property
    def weights_(self) -> dict[int | str, float]:
        """ML.WEIGHTS: feature index -> weight, plus ``"__INTERCEPT__"``."""
        weights: dict[int | str, float] = {i: float(w) for i, w in enumerate(self.coef_)}
        if self.fit_intercept:
            weights["__INTERCEPT__"] = float(self._b[0])
        return weights


@register_trainer
class LogisticRegTrainer(_GLM):
    """BigQuery ML's ``logistic_reg``: binary (sigmoid) or multiclass (softmax) cross-entropy.

    Labels may be strings or numbers; ``classes_`` holds them sorted, ``predict`` returns them and
    ``predict_proba`` gives one column per class in ``classes_`` order. ``auto_class_weights``
    weighs each class by ``n_rows / (n_classes * n_rows_of_class)``; ``class_weights`` maps a
    label to its weight (labels left out weigh 1).
    """

    model_type: ClassVar[str] = "logistic_reg"
    task: ClassVar[Task] = "classification"

    def __init__(
        self,
        *,
        auto_class_weights: bool = False,
        class_weights: Mapping[Label, float] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.auto_class_weights, self.class_weights = check_class_weights(
            self.model_type, auto_class_weights, class_weights
        )

    def get_params(self) -> dict[str, Any]:
        return {
            **super().get_params(),
            "auto_class_weights": self.auto_class_weights,
            "class_weights": self.class_weights,
        }

    def _targets(self, y: Array) -> tuple[Array, Array]:
        self.classes_, codes, weights = class_codes(
            self.model_type,
            y,
            auto_class_weights=self.auto_class_weights,
            class_weights=self.class_weights,
        )
        return self._encode(codes), weights

    def _encode(self, codes: Array) -> Array:
        k = self.classes_.shape[0]
        if k == 2:
            return codes.astype(np.float64)[:, None]
        T = np.zeros((codes.shape[0], k))
        T[np.arange(codes.shape[0]), codes] = 1.0
        return T

    def _eval_targets(self, y: Array) -> Array:
        return self._encode(eval_codes(self.model_type, self.classes_, y))

    def _initial_intercept(self, T: Array, s: Array) -> Array:
        share = np.clip((s @ T) / s.sum(), 1e-12, 1 - 1e-12)
        if T.shape[1] == 1:
            result: Array = np.log(share / (1 - share))
            return result
        logs: Array = np.log(share)
        centred: Array = logs - logs.mean()
        return centred

    def _loss_fn(self, T: Array, s: Array) -> LossFn:
        if T.shape[1] == 1:

            def binary(Z: Array) -> tuple[float, Array]:
                z = Z[:, 0]
                losses = np.logaddexp(0.0, z) - T[:, 0] * z
                return float(s @ losses), s[:, None] * (_sigmoid(Z) - T)

            return binary

        def softmax(Z: Array) -> tuple[float, Array]:
            shifted = Z - Z.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            log_p = shifted - log_norm
            losses = -(T * log_p).sum(axis=1)
            return float(s @ losses), s[:, None] * (np.exp(log_p) - T)

        return softmax

    def predict_proba(self, X: Array | OneHotFeatures) -> Array:
        """Probabilities, rows x classes, columns in ``classes_`` order."""
        scores = self._scores(X)
        if scores.shape[1] == 1:
            p = _sigmoid(scores[:, 0])
            return np.column_stack([1.0 - p, p])
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        result: Array = shifted / shifted.sum(axis=1, keepdims=True)
        return result

    def predict(self, X: Array | OneHotFeatures) -> Array:
        proba = self.predict_proba(X)
        result: Array = self.classes_[np.argmax(proba, axis=1)]
        return result

    @property
    def weights_(self) -> dict[int | str, float | dict[Label, float]]:
        """ML.WEIGHTS: feature index -> weight (binary: for ``classes_[1]``), or for multiclass
        feature index -> {label: weight}; plus ``"__INTERCEPT__"``."""
        self._check_fitted("_W")
        labels: list[Label] = self.classes_.tolist()
        out: dict[int | str, float | dict[Label, float]] = {}
        rows = [*enumerate(self._W)]
        if self.fit_intercept:
            rows.append(("__INTERCEPT__", self._b))  # type: ignore[arg-type]
        for key, row in rows:
            if row.shape[0] == 1:
                out[key] = float(row[0])
            else:
                out[key] = {label: float(w) for label, w in zip(labels, row, strict=True)}
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist()}

    def _restore_extra(self, saved: dict[str, Any]) -> None:
        self.classes_ = np.asarray(saved["classes"])


def _sigmoid(z: Array) -> Array:
    result: Array = np.exp(-np.logaddexp(0.0, -z))
    return result
