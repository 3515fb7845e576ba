"""Evaluate a :class:`~kiln.model.Model` on a table, and compare two models on the same rows.

:func:`evaluate_model` is what ``ML.EVALUATE`` and ``kiln evaluate`` run: the model's one
prediction path (:meth:`Model.predict`) on the table, the metrics of :mod:`kiln.evaluate` on its
answer (BigQuery ML's names), optional slices, a baseline model on the same rows, the TFMA-style
blessing, permutation importance and the training curve stored in the model.

:func:`compare_models` puts two models' predictions side by side and tests whether their
difference is more than chance, with tests implemented here on :mod:`math` (no SciPy):

- classification: McNemar's test on the rows exactly one model gets right. With ``n`` such rows
  the p-value is the exact two-sided binomial ``min(1, 2 * P(X <= min(b, c)))``, ``X ~ B(n, 1/2)``,
  up to :data:`MCNEMAR_EXACT_MAX` rows, and the chi-square with continuity correction
  ``(|b - c| - 1)^2 / (b + c)`` (1 degree of freedom) above.
- regression: a paired t-test on the per-row squared errors (Student's t distribution through
  the regularized incomplete beta function) and the Wilcoxon signed-rank test on the same
  differences (normal approximation with tie and continuity corrections; zero differences
  dropped, Wilcoxon's convention).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiln.errors import DataError
from kiln.evaluate import (
    Blessing,
    MetricThreshold,
    bless,
    classification_metrics,
    clustering_metrics,
    permutation_importance,
    regression_metrics,
    sliced_metrics,
)
from kiln.model._model import Model

__all__ = [
    "IMPORTANCE_SAMPLE_SIZE",
    "LOWER_IS_BETTER",
    "MCNEMAR_EXACT_MAX",
    "ComparisonResult",
    "EvaluationResult",
    "compare_models",
    "evaluate_model",
    "parse_threshold",
]

IMPORTANCE_SAMPLE_SIZE = 5000
"""Permutation importance runs on a seeded sample of at most this many rows."""

MCNEMAR_EXACT_MAX = 10_000
"""McNemar's test is the exact binomial up to this many discordant rows, chi-square above."""

LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "mean_absolute_error",
        "mean_squared_error",
        "root_mean_squared_error",
        "mean_squared_log_error",
        "median_absolute_error",
        "davies_bouldin_index",
        "mean_squared_distance",
    }
)
"""Metrics where a smaller value is better; every other metric is higher-is-better."""

# Keys of a metrics dict too big to repeat for every slice (curves, matrices, histograms).
_BULKY = ("per_class", "confusion_matrix", "roc_curve", "pr_curve", "calibration", "residuals")
_SUPERVISED = ("regression", "classification")
_FloatArray = np.ndarray[Any, np.dtype[np.float64]]


# --------------------------------------------------------------------------- thresholds


_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|=)\s*([^\s]+)\s*$")


def parse_threshold(spec: str, *, change: bool = False) -> MetricThreshold:
    """A :class:`MetricThreshold` from the CLI's text.

    Value bounds (``change=False``): ``METRIC>=VALUE`` (a lower bound) or ``METRIC<=VALUE``
    (an upper bound), e.g. ``roc_auc>=0.9``, ``log_loss<=0.3``.

    Change against the baseline (``change=True``): ``METRIC=DELTA`` is how much *worse* than the
    baseline the candidate may be, in the metric's units (``accuracy=0.01``), or relative to the
    baseline with a ``%`` (``mean_squared_error=5%``); ``0`` means "no worse". Worse is lower for
    most metrics and higher for those in :data:`LOWER_IS_BETTER` (losses and errors).
    """
    match = _SPEC.match(spec)
    what = "--max-change" if change else "--threshold"
    form = "METRIC=DELTA or METRIC=PERCENT%" if change else "METRIC>=VALUE or METRIC<=VALUE"
    if match is None or (match.group(2) == "=") != change:
        raise DataError(f"{what} {spec!r} does not parse; write {form}, e.g. accuracy>=0.9")
    metric, op, text = match.groups()
    relative = change and text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        raise DataError(f"{what} {spec!r}: {text!r} is not a number; write {form}") from None
    if not math.isfinite(value):
        raise DataError(f"{what} {spec!r}: the limit must be a finite number")
    higher = metric not in LOWER_IS_BETTER
    if not change:
        bound = "lower_bound" if op == ">=" else "upper_bound"
        return MetricThreshold(metric, higher_is_better=higher, **{bound: value})
    if relative:
        return MetricThreshold(metric, change_relative=value / 100.0, higher_is_better=higher)
    return MetricThreshold(metric, change_absolute=value, higher_is_better=higher)


# --------------------------------------------------------------------------- results


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in _BULKY}


@dataclass
class EvaluationResult:
    """What :func:`evaluate_model` found; ``to_dict()`` is JSON-ready."""

    model_type: str
    task: str
    label: str | None
    metrics: dict[str, Any]
    slices: list[dict[str, Any]] = field(default_factory=list)
    baseline_metrics: dict[str, Any] | None = None
    baseline_slices: list[dict[str, Any]] | None = None
    blessing: Blessing | None = None
    importance: dict[str, Any] | None = None
    training_info: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def deltas(self) -> dict[str, float]:
        """Candidate minus baseline, for every scalar metric both report as a number."""
        if self.baseline_metrics is None:
            return {}
        out: dict[str, float] = {}
        for name, value in self.metrics.items():
            base = self.baseline_metrics.get(name)
            if _is_number(value) and _is_number(base) and name != "num_examples":
                out[name] = float(value) - float(base)  # type: ignore[arg-type]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "task": self.task,
            "label": self.label,
            "metrics": self.metrics,
            "slices": self.slices,
            "baseline_metrics": self.baseline_metrics,
            "baseline_slices": self.baseline_slices,
            "deltas": self.deltas(),
            "blessing": None if self.blessing is None else self.blessing.to_dict(),
            "importance": self.importance,
            "training_info": self.training_info,
            "notes": self.notes,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- evaluation


def _labelled_rows(model: Model, table: pa.Table, notes: list[str]) -> pa.Table:
    """``table`` with the rows whose label is null dropped (with a note); errors without label."""
    if model.task not in _SUPERVISED:
        return table
    label = model.label
    if not label or label not in table.column_names:
        raise DataError(
            f"the evaluation data has no label column {label!r}, which the model predicts; "
            f"its columns: {', '.join(table.column_names)}"
        )
    nulls = table[label].null_count
    if nulls:
        notes.append(f"{nulls} row(s) with a null {label!r} were left out of the evaluation")
        table = table.filter(pc.is_valid(table[label]))
    if table.num_rows == 0:
        raise DataError(f"the evaluation data has no row with a value of {label!r}")
    return table


def _probabilities(model: Model, predictions: pa.Table) -> _FloatArray:
    column = predictions[f"predicted_{model.label}_probs"].combine_chunks()
    k = len(model.trainer.classes_)  # type: ignore[attr-defined]
    probs = pc.struct_field(pc.list_flatten(column), "prob").to_numpy(zero_copy_only=False)
    return np.asarray(probs, dtype=np.float64).reshape(len(predictions), k)


def _classes(model: Model) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in model.trainer.classes_]  # type: ignore[attr-defined]


def _truth(table: pa.Table, label: str) -> np.ndarray[Any, Any]:
    return np.asarray(table[label].to_numpy(zero_copy_only=False))


@dataclass
class _Scored:
    """One model's answer on the rows, in the form the metric functions take."""

    truth: Any  # labels, or the transformed features for clustering
    answer: Any  # probabilities, values, or centroid indexes
    metric_fn: Callable[[Any, Any], dict[str, Any]]


def _score(model: Model, table: pa.Table) -> _Scored:
    task = model.task
    if task == "classification":
        assert model.label is not None
        proba = _probabilities(model, model.predict(table))
        fn = partial(classification_metrics, classes=_classes(model))
        return _Scored(_truth(table, model.label), proba, fn)
    if task == "regression":
        assert model.label is not None
        values = model.predict(table)[f"predicted_{model.label}"].to_numpy()
        return _Scored(_truth(table, model.label), values, regression_metrics)
    if task == "clustering":
        model._validate(table)
        X = np.asarray(model.transform.transform(table).X, dtype=np.float64)
        centroid = model.predict(table)["centroid_id"].to_numpy() - 1
        centers = getattr(model.trainer, "centroids_", None)
        if getattr(model.trainer, "distance_type", "EUCLIDEAN") != "EUCLIDEAN":
            centers = None  # cosine centroids live on the unit sphere: use the clusters' means

        def clusters(x: Any, labels: Any) -> dict[str, Any]:
            return clustering_metrics(x, labels, centers)

        return _Scored(X, centroid, clusters)
    raise DataError(
        f"evaluating a {model.trainer.model_type} model ({task}) is not supported; evaluate "
        "classifiers, regressors and k-means"
    )


def _sliced(scored: _Scored, table: pa.Table, slice_by: Sequence[str]) -> list[dict[str, Any]]:
    if not slice_by:
        return []
    entries = sliced_metrics(
        table, scored.truth, scored.answer, slice_by=list(slice_by), metric_fn=scored.metric_fn
    )
    return [_scalars(e) for e in entries[1:]]


def _importance(model: Model, table: pa.Table, seed: int) -> dict[str, Any] | None:
    if model.task not in _SUPERVISED or model.label is None:
        return None
    label = model.label
    features = [c["name"] for c in model.signature if c["name"] in table.column_names]
    if not features:
        return None
    rows = table
    if table.num_rows > IMPORTANCE_SAMPLE_SIZE:
        pick = np.sort(
            np.random.default_rng(seed).choice(table.num_rows, IMPORTANCE_SAMPLE_SIZE, False)
        )
        rows = table.take(pa.array(pick))
    y = _truth(rows, label)
    X = rows.select(features)
    metric: str
    fn: Callable[[Any, Any], float]
    if model.task == "classification":
        classes = _classes(model)
        lookup = {c: i for i, c in enumerate(classes)}
        codes = np.asarray([lookup.get(v, -1) for v in y.tolist()], dtype=np.int64)
        if (codes < 0).any():
            return None  # labels outside the model's classes: the metrics will say so

        def predict(data: pa.Table) -> Any:
            return _probabilities(model, model.predict(data))

        def log_loss(truth: Any, proba: Any) -> float:
            p = np.clip(proba[np.arange(len(codes)), codes], 1e-15, 1.0)
            return float(-np.log(p).mean())

        metric = "log_loss"
        fn = log_loss
    else:

        def predict(data: pa.Table) -> Any:
            return model.predict(data)[f"predicted_{label}"].to_numpy()

        def mse(truth: Any, values: Any) -> float:
            return float(((np.asarray(truth, dtype=np.float64) - values) ** 2).mean())

        metric = "mean_squared_error"
        fn = mse
    result = permutation_importance(
        predict, X, y, fn, n_repeats=3, seed=seed, higher_is_better=False
    )
    return {
        "metric": metric,
        "higher_is_better": False,
        "num_examples": rows.num_rows,
        "seed": seed,
        **result,
    }


def evaluate_model(
    model: Model,
    table: pa.Table,
    *,
    slice_by: Sequence[str] = (),
    baseline: Model | None = None,
    thresholds: Sequence[MetricThreshold] = (),
    importance: bool = True,
    check_slices: bool = False,
    seed: int = 0,
) -> EvaluationResult:
    """Evaluate ``model`` on ``table`` (which holds the label column, for supervised models).

    ``metrics`` are :mod:`kiln.evaluate`'s for the model's task, computed on
    :meth:`Model.predict`'s answer: the class probabilities for classifiers, the values for
    regressors, the transformed features and centroids for k-means. Rows with a null label are
    left out, with a note. ``slice_by`` adds the scalar metrics per value of each column (curves
    and matrices only overall). ``baseline`` is evaluated on the same rows; ``thresholds``
    (value bounds, and changes against the baseline) give the :class:`~kiln.evaluate.Blessing`,
    on the overall metrics, and on every slice too with ``check_slices``. Without thresholds
    the blessing is "blessed: no thresholds to check".

    ``importance`` adds permutation importance of each input column, through the model's own
    predict path (so it explains the whole pipeline, transform included), on a sample of at most
    :data:`IMPORTANCE_SAMPLE_SIZE` rows drawn with ``seed``: the increase of log loss
    (classification) or mean squared error (regression) when the column is shuffled.
    """
    notes: list[str] = []
    rows = _labelled_rows(model, table, notes)
    for column in slice_by:
        if column not in rows.column_names:
            raise DataError(
                f"slice column {column!r} is not in the evaluation data; its columns: "
                f"{', '.join(rows.column_names)}"
            )
    scored = _score(model, rows)
    metrics = scored.metric_fn(scored.truth, scored.answer)
    unknown = sorted({t.metric for t in thresholds} - set(metrics))
    if unknown:
        known = ", ".join(k for k, v in metrics.items() if _is_number(v) and k != "num_examples")
        raise DataError(
            f"threshold on {', '.join(map(repr, unknown))}, which a {model.task} model does not "
            f"report; its metrics: {known}"
        )
    slices = _sliced(scored, rows, slice_by)
    baseline_metrics: dict[str, Any] | None = None
    baseline_slices: list[dict[str, Any]] | None = None
    if baseline is not None:
        if baseline.task != model.task or baseline.label != model.label:
            raise DataError(
                f"the baseline model is {baseline.task} of {baseline.label!r} but the candidate "
                f"is {model.task} of {model.label!r}; compare models of one task and label"
            )
        base = _score(baseline, rows)
        baseline_metrics = base.metric_fn(base.truth, base.answer)
        baseline_slices = _sliced(base, rows, slice_by) if slice_by else None
    blessing = bless(
        metrics,
        thresholds,
        baseline_metrics=baseline_metrics,
        slices=slices if check_slices else None,
        baseline_slices=baseline_slices if check_slices else None,
    )
    return EvaluationResult(
        model_type=model.trainer.model_type,
        task=model.task,
        label=model.label,
        metrics=metrics,
        slices=slices,
        baseline_metrics=baseline_metrics,
        baseline_slices=baseline_slices,
        blessing=blessing,
        importance=_importance(model, rows, seed) if importance else None,
        training_info=[i.to_dict() for i in getattr(model.trainer, "training_info_", [])],
        notes=notes,
    )


# --------------------------------------------------------------------------- statistics


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_two_sided(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom.

    ``P(|T| >= |t|) = I_{df / (df + t²)}(df / 2, 1 / 2)``.
    """
    if math.isnan(t):
        return 1.0
    if math.isinf(t):
        return 0.0
    return min(1.0, max(0.0, _betainc(df / 2.0, 0.5, df / (df + t * t))))


def mcnemar(b: int, c: int) -> dict[str, Any]:
    """McNemar's test: ``b`` rows only the first model gets right, ``c`` only the second."""
    n = b + c
    if n == 0:
        return {"name": "mcnemar_exact", "statistic": 0.0, "p_value": 1.0, "b": b, "c": c}
    if n <= MCNEMAR_EXACT_MAX:
        k = min(b, c)
        # P(X <= k) for X ~ B(n, 1/2), summed in log space so that large n does not overflow.
        logs = [
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)
        ]
        top = max(logs)
        tail = math.exp(top + math.log(sum(math.exp(v - top) for v in logs)) - n * math.log(2.0))
        return {
            "name": "mcnemar_exact",
            "statistic": float(k),
            "p_value": min(1.0, 2.0 * tail),
            "b": b,
            "c": c,
        }
    chi2 = (abs(b - c) - 1.0) ** 2 / n
    return {
        "name": "mcnemar_chi2_continuity",
        "statistic": chi2,
        "p_value": math.erfc(math.sqrt(chi2 / 2.0)),
        "b": b,
        "c": c,
    }


def paired_t_test(d: _FloatArray) -> dict[str, Any]:
    """Paired t-test of the differences ``d`` (mean 0 under the null hypothesis)."""
    n = int(d.size)
    mean = float(d.mean()) if n else 0.0
    if n < 2:
        return {"name": "paired_t", "statistic": 0.0, "df": 0, "p_value": 1.0, "mean": mean}
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
        p = student_t_two_sided(t, n - 1)
    return {"name": "paired_t", "statistic": t, "df": n - 1, "p_value": p, "mean": mean}


def wilcoxon_signed_rank(d: _FloatArray) -> dict[str, Any]:
    """Wilcoxon's signed-rank test, normal approximation with tie and continuity corrections."""
    nonzero = d[d != 0.0]
    n = int(nonzero.size)
    if n == 0:
        return {"name": "wilcoxon_signed_rank", "statistic": 0.0, "p_value": 1.0, "n": 0}
    magnitude = np.abs(nonzero)
    uniques, inverse, counts = np.unique(magnitude, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # the mean of the ranks each tie group spans
    ranks = average_rank[inverse.reshape(-1)]
    w_plus = float(ranks[nonzero > 0].sum())
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float((counts**3 - counts).sum()) / 48.0
    if var <= 0.0:
        return {"name": "wilcoxon_signed_rank", "statistic": w_plus, "p_value": 1.0, "n": n}
    z = max(0.0, abs(w_plus - mean) - 0.5) / math.sqrt(var)
    p = math.erfc(z / math.sqrt(2.0))
    del uniques
    return {"name": "wilcoxon_signed_rank", "statistic": w_plus, "z": z, "p_value": p, "n": n}


# --------------------------------------------------------------------------- comparison


@dataclass
class ComparisonResult:
    """What :func:`compare_models` found; ``to_dict()`` is JSON-ready (tables as row lists)."""

    task: str
    label: str
    num_examples: int
    metric: str
    metric_a: float
    metric_b: float
    rows: pa.Table
    disagreements: int
    examples: pa.Table
    test: dict[str, Any]
    tests: list[dict[str, Any]] = field(default_factory=list)
    metrics_a: dict[str, Any] = field(default_factory=dict)
    metrics_b: dict[str, Any] = field(default_factory=dict)
    disagreement_definition: str = ""

    @property
    def difference(self) -> float:
        """``metric_b - metric_a``."""
        return self.metric_b - self.metric_a

    @property
    def disagreement_rate(self) -> float:
        return self.disagreements / self.num_examples if self.num_examples else 0.0

    @property
    def p_value(self) -> float:
        return float(self.test["p_value"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "label": self.label,
            "num_examples": self.num_examples,
            "metric": self.metric,
            "metric_a": self.metric_a,
            "metric_b": self.metric_b,
            "difference": self.difference,
            "test": self.test,
            "tests": self.tests,
            "disagreements": self.disagreements,
            "disagreement_rate": self.disagreement_rate,
            "disagreement_definition": self.disagreement_definition,
            "rows": self.rows.to_pylist(),
            "examples": self.examples.to_pylist(),
            "metrics_a": self.metrics_a,
            "metrics_b": self.metrics_b,
        }


def compare_models(a: Model, b: Model, table: pa.Table, *, rows: int = 20) -> ComparisonResult:
    """Both models' predictions on the same rows of ``table``, and whether they differ.

    For classifiers the rows disagree where the predicted classes differ; the metric is
    ``accuracy`` and the test McNemar's on which rows each model gets right. For regressors rows
    disagree where the predictions differ by more than a tenth of the label's standard deviation;
    the metric is ``mean_squared_error`` and the tests are the paired t-test (``test``) and
    Wilcoxon's signed-rank test on the per-row squared errors. ``rows`` caps the side-by-side
    table and the disagreement examples (the first rows of ``table``, and the first disagreeing
    rows, largest difference first for regressors).
    """
    if a.task != b.task or a.label != b.label:
        raise DataError(
            f"model A is {a.task} of {a.label!r} and model B {b.task} of {b.label!r}; compare "
            "models that predict the same label"
        )
    if a.task not in _SUPERVISED or a.label is None:
        raise DataError(
            f"comparing {a.task} models is not supported; compare classifiers or regressors"
        )
    if rows < 0:
        raise DataError(f"rows must be 0 or more, got {rows}")
    label = a.label
    notes: list[str] = []
    data = _labelled_rows(a, table, notes)
    sa, sb = _score(a, data), _score(b, data)
    metrics_a = _scalars(sa.metric_fn(sa.truth, sa.answer))
    metrics_b = _scalars(sb.metric_fn(sb.truth, sb.answer))
    n = data.num_rows
    truth = sa.truth
    index = np.arange(n)
    columns: dict[str, Any] = {"row": pa.array(index, pa.int64()), label: data[label]}
    if a.task == "classification":
        classes_a, classes_b = _classes(a), _classes(b)
        pred_a = np.asarray(classes_a, dtype=object)[np.argmax(sa.answer, axis=1)]
        pred_b = np.asarray(classes_b, dtype=object)[np.argmax(sb.answer, axis=1)]
        if len(classes_a) == 2:  # the 0.5 threshold, as the metrics use
            pred_a = np.where(sa.answer[:, 1] >= 0.5, classes_a[1], classes_a[0])
        if len(classes_b) == 2:
            pred_b = np.where(sb.answer[:, 1] >= 0.5, classes_b[1], classes_b[0])
        truth_list = truth.tolist()
        right_a = np.asarray([p == t for p, t in zip(pred_a.tolist(), truth_list, strict=True)])
        right_b = np.asarray([p == t for p, t in zip(pred_b.tolist(), truth_list, strict=True)])
        differ = np.asarray([x != y for x, y in zip(pred_a.tolist(), pred_b.tolist(), strict=True)])
        columns |= {
            "predicted_a": pa.array(pred_a.tolist()),
            "predicted_b": pa.array(pred_b.tolist()),
            "correct_a": pa.array(right_a),
            "correct_b": pa.array(right_b),
        }
        test = mcnemar(int((right_a & ~right_b).sum()), int((~right_a & right_b).sum()))
        tests = [test]
        metric = "accuracy"
        definition = "the predicted classes differ"
        order = np.flatnonzero(differ)
    else:
        y = np.asarray(truth, dtype=np.float64)
        pa_, pb_ = np.asarray(sa.answer, np.float64), np.asarray(sb.answer, np.float64)
        gap = np.abs(pa_ - pb_)
        tolerance = 0.1 * float(y.std())
        differ = gap > tolerance
        columns |= {
            "predicted_a": pa.array(pa_),
            "predicted_b": pa.array(pb_),
            "abs_error_a": pa.array(np.abs(y - pa_)),
            "abs_error_b": pa.array(np.abs(y - pb_)),
        }
        squared = (y - pa_) ** 2 - (y - pb_) ** 2
        test = paired_t_test(squared)
        tests = [test, wilcoxon_signed_rank(squared)]
        metric = "mean_squared_error"
        definition = f"the predictions differ by more than {tolerance:.4g} (0.1 x std of {label})"
        flagged = np.flatnonzero(differ)
        order = flagged[np.argsort(-gap[flagged], kind="stable")]
    side_by_side = pa.table(columns)
    return ComparisonResult(
        task=a.task,
        label=label,
        num_examples=n,
        metric=metric,
        metric_a=float(metrics_a[metric]),
        metric_b=float(metrics_b[metric]),
        rows=side_by_side.slice(0, rows),
        disagreements=int(differ.sum()),
        examples=side_by_side.take(pa.array(order[:rows], pa.int64())),
        test=test,
        tests=tests,
        metrics_a=metrics_a,
        metrics_b=metrics_b,
        disagreement_definition=definition,
    )
