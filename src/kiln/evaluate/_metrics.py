"""Metrics per task, on NumPy arrays, named the way BigQuery ML's ``ML.EVALUATE`` names them.

Three functions, one per task: :func:`classification_metrics`, :func:`regression_metrics` and
:func:`clustering_metrics`. Each returns a plain JSON-ready dict (Python floats, ints, strings,
lists, ``None``), so an Evaluation artifact can store it as is.

Names and averaging follow ``ML.EVALUATE``:

- classification: ``precision``, ``recall``, ``accuracy``, ``f1_score``, ``log_loss``,
  ``roc_auc``. For two classes precision, recall and F1 are those of the positive class
  (``classes[1]``) at ``threshold``; for more, precision, recall, F1, ROC AUC and PR AUC are
  macro averages (the unweighted mean over classes, one-vs-rest), accuracy is micro (the fraction
  of rows predicted right) and log loss is the multiclass cross-entropy.
- regression: ``mean_absolute_error``, ``mean_squared_error``, ``mean_squared_log_error``,
  ``median_absolute_error``, ``r2_score``, ``explained_variance``.
- clustering: ``davies_bouldin_index``, ``mean_squared_distance``.

Kiln adds what a person looks at next: per-class metrics, the confusion matrix, ROC and PR
curves, calibration, residuals, silhouette. A metric that is undefined for the data (ROC AUC
when ``y_true`` holds a single class, MSLE on negative values) is ``None`` with a line in
``notes`` saying why, never an exception. Input that cannot be evaluated at all (no rows,
``NaN`` predictions, lengths that differ, labels outside ``classes``) raises
:class:`~kiln.errors.DataError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kiln.errors import DataError

__all__ = [
    "CALIBRATION_BINS",
    "MAX_CURVE_POINTS",
    "SILHOUETTE_SAMPLE_SIZE",
    "classification_metrics",
    "clustering_metrics",
    "regression_metrics",
]

MAX_CURVE_POINTS = 200
"""ROC and PR curves are thinned to at most this many points (first and last always kept)."""

CALIBRATION_BINS = 10
"""Equal-width probability bins of the calibration table."""

SILHOUETTE_SAMPLE_SIZE = 10_000
"""Silhouette is computed on a seeded sample of at most this many rows (it is quadratic)."""

RESIDUAL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
RESIDUAL_HISTOGRAM_BINS = 20

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------- input checking


def _to_numpy(values: Any, name: str) -> npt.NDArray[Any]:
    """``values`` (NumPy, a list, a pyarrow array, a polars series) as a NumPy array."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        try:
            array = values.to_numpy(zero_copy_only=False)
        except TypeError:
            array = values.to_numpy()
    else:
        array = np.asarray(values)
    if array.ndim == 0:
        raise DataError(f"{name} must be a sequence of values, got a single value {values!r}")
    return np.asarray(array)


def _check_rows(array: npt.NDArray[Any], name: str) -> None:
    if array.shape[0] == 0:
        raise DataError(f"{name} is empty: there are no rows to evaluate")


def _check_same_length(n: int, array: npt.NDArray[Any], name: str) -> None:
    if array.shape[0] != n:
        raise DataError(f"{name} has {array.shape[0]} rows but y_true has {n}; pass one per row")


def _as_finite_float(array: npt.NDArray[Any], name: str) -> FloatArray:
    try:
        floats = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    bad = ~np.isfinite(floats)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
        raise DataError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s), the first at row {row}; "
            "drop or impute those rows before evaluating"
        )
    return floats


def _weights(sample_weight: Any, n: int) -> FloatArray | None:
    if sample_weight is None:
        return None
    weights = _as_finite_float(_to_numpy(sample_weight, "sample_weight"), "sample_weight")
    if weights.ndim != 1:
        raise DataError("sample_weight must be one-dimensional, one weight per row")
    _check_same_length(n, weights, "sample_weight")
    if (weights < 0).any():
        raise DataError("sample_weight holds negative weights; weights must be >= 0")
    if weights.sum() <= 0:
        raise DataError("sample_weight sums to 0: at least one row must carry weight")
    return weights


def _py(value: Any) -> Any:
    """A NumPy scalar as the Python value a JSON encoder accepts."""
    return value.item() if isinstance(value, np.generic) else value


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _wmean(values: FloatArray, weights: FloatArray | None) -> float:
    return float(np.average(values, weights=weights))


# --------------------------------------------------------------------------- curves


def _binary_curve(
    positive: npt.NDArray[np.bool_], score: FloatArray, weights: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cumulative (weighted) false and true positives at each distinct score, high to low.

    The point at index ``i`` counts every row whose score is ``>= thresholds[i]``.
    """
    order = np.argsort(score, kind="mergesort")[::-1]
    score = score[order]
    pos = positive[order].astype(np.float64)
    w = np.ones_like(pos) if weights is None else weights[order]
    distinct = np.flatnonzero(np.diff(score))
    last = np.r_[distinct, pos.size - 1]
    tps = np.cumsum(pos * w)[last]
    fps = np.cumsum((1.0 - pos) * w)[last]
    return fps, tps, score[last]


def _roc_auc(fps: FloatArray, tps: FloatArray) -> float | None:
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return float(np.trapezoid(tpr, fpr))


def _precision_recall(fps: FloatArray, tps: FloatArray) -> tuple[FloatArray, FloatArray]:
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted > 0)
    recall = tps / tps[-1]
    return precision, recall


def _average_precision(fps: FloatArray, tps: FloatArray) -> float | None:
    """Average precision: sum over thresholds of (R_n - R_{n-1}) * P_n, no interpolation."""
    if tps[-1] <= 0:
        return None
    precision, recall = _precision_recall(fps, tps)
    return float(max(0.0, float(np.sum(np.diff(np.r_[0.0, recall]) * precision))))


def _thin(n: int) -> IntArray:
    if n <= MAX_CURVE_POINTS:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(np.int64))


def _roc_points(
    fps: FloatArray, tps: FloatArray, thresholds: FloatArray, label: Any
) -> dict[str, Any]:
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    keep = _thin(fpr.size)
    cuts: list[float | None] = [None, *(float(t) for t in thresholds)]
    return {
        "class": label,
        "false_positive_rate": fpr[keep].tolist(),
        "recall": tpr[keep].tolist(),
        "thresholds": [cuts[i] for i in keep],
    }


def _pr_points(
    fps: FloatArray, tps: FloatArray, thresholds: FloatArray, label: Any
) -> dict[str, Any]:
    precision, recall = _precision_recall(fps, tps)
    # From the highest threshold down; the curve starts at (recall 0, precision 1).
    precision = np.r_[1.0, precision]
    recall = np.r_[0.0, recall]
    cuts: list[float | None] = [None, *(float(t) for t in thresholds)]
    keep = _thin(recall.size)
    return {
        "class": label,
        "precision": precision[keep].tolist(),
        "recall": recall[keep].tolist(),
        "thresholds": [cuts[i] for i in keep],
    }


def _calibration(
    hit: npt.NDArray[np.bool_], score: FloatArray, weights: FloatArray | None, what: str
) -> dict[str, Any]:
    """Reliability table: 10 equal-width bins of ``score`` against the observed rate of ``hit``.

    Bin ``i`` holds ``edges[i] < score <= edges[i+1]`` (the first bin includes 0.0), the binning
    of scikit-learn's ``calibration_curve(strategy="uniform")``. Empty bins are kept with
    ``count`` 0 and ``None`` means. ``expected_calibration_error`` is the weighted mean of
    ``|mean_predicted - fraction_positive|`` over the bins.
    """
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.searchsorted(edges[1:-1], score, side="left")
    w = np.ones_like(score) if weights is None else weights
    total = float(w.sum())
    bins: list[dict[str, Any]] = []
    ece = 0.0
    for i in range(CALIBRATION_BINS):
        member = index == i
        weight = float(w[member].sum())
        mean_predicted: float | None = None
        fraction: float | None = None
        if weight > 0:
            mean_predicted = float(np.average(score[member], weights=w[member]))
            fraction = float(np.average(hit[member].astype(np.float64), weights=w[member]))
            ece += weight / total * abs(mean_predicted - fraction)
        bins.append(
            {
                "lower": float(edges[i]),
                "upper": float(edges[i + 1]),
                "count": int(member.sum()),
                "mean_predicted": mean_predicted,
                "fraction_positive": fraction,
            }
        )
    return {"of": what, "bins": bins, "expected_calibration_error": ece}


# --------------------------------------------------------------------------- classification


def _encode_labels(y: npt.NDArray[Any], classes: Sequence[Any], name: str) -> IntArray:
    lookup = {_py(c): i for i, c in enumerate(classes)}
    try:
        uniques, inverse = np.unique(y, return_inverse=True)
    except TypeError:  # None among strings: fall back to the row loop, which names the row
        pass
    else:
        mapped = [lookup.get(_py(u)) for u in uniques]
        if all(code is not None for code in mapped):
            table = np.asarray(mapped, dtype=np.int64)
            return np.asarray(table[inverse.reshape(-1)], dtype=np.int64)
    codes = np.empty(y.shape[0], dtype=np.int64)
    for row, value in enumerate(y.tolist()):
        code = lookup.get(value)
        if code is None:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                raise DataError(f"{name} is missing a value at row {row}; drop unlabeled rows")
            raise DataError(
                f"{name} holds {value!r} at row {row}, which is not one of the classes "
                f"{list(lookup)}; pass every label in classes="
            )
        codes[row] = code
    return codes


def _proba_matrix(pred: npt.NDArray[Any], k: int) -> FloatArray | None:
    """Predictions as an (n, k) probability matrix, or ``None`` when they are labels.

    A 2-D array is one probability column per class; with two classes a 1-D float array is the
    probability of ``classes[1]``; anything else is predicted labels.
    """
    if pred.ndim == 2:
        if pred.shape[1] != k:
            raise DataError(
                f"predictions have {pred.shape[1]} columns but there are {k} classes; "
                "pass one probability column per class, in the order of classes="
            )
        proba = _as_finite_float(pred, "predicted probabilities")
    elif k == 2 and pred.dtype.kind == "f":
        p = _as_finite_float(pred, "predicted probabilities")
        proba = np.column_stack([1.0 - p, p])
    else:
        return None
    if (proba < 0).any() or (proba > 1).any():
        raise DataError(
            "predicted probabilities must lie in [0, 1]; pass probabilities, not scores or logits"
        )
    sums = proba.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if off.size:
        raise DataError(
            f"predicted probabilities of row {int(off[0])} sum to {float(sums[off[0]])!r}, not 1; "
            "pass one probability per class (a softmax), in the order of classes="
        )
    return proba


def classification_metrics(
    y_true: Any,
    proba_or_labels: Any,
    *,
    classes: Sequence[Any],
    threshold: float = 0.5,
    sample_weight: Any = None,
) -> dict[str, Any]:
    """Metrics of a classifier, named as ``ML.EVALUATE`` names them.

    ``classes`` lists every class in the order of the probability columns; with two classes
    ``classes[1]`` is the positive class. ``proba_or_labels`` is one of:

    - an ``(n, len(classes))`` array of probabilities;
    - with two classes, a 1-D float array: the probability of ``classes[1]``;
    - predicted labels (any other 1-D array). Then the metrics that need scores (``log_loss``,
      ``roc_auc``, ``pr_auc``, curves, calibration) are ``None`` with a note.

    With two classes and probabilities a row is predicted positive when its probability is
    ``>= threshold`` (BigQuery's positive-class threshold, 0.5 by default), and ``precision``,
    ``recall`` and ``f1_score`` are those of the positive class. With more classes the prediction
    is the most probable class and ``threshold`` is not used; precision, recall, F1, ROC AUC
    (one-vs-rest) and PR AUC are macro averages over ``classes``.

    ``pr_auc`` is average precision, ``sum_n (R_n - R_{n-1}) * P_n`` over the distinct scores
    (scikit-learn's ``average_precision_score``), not the trapezoidal area, which is optimistic.
    A precision or recall whose denominator is 0 (a class never predicted, or absent) is 0.0.
    ``sample_weight`` weighs every metric, the confusion matrix included.
    """
    truth = _to_numpy(y_true, "y_true")
    if truth.ndim != 1:
        raise DataError("y_true must be one-dimensional, one label per row")
    _check_rows(truth, "y_true")
    n = truth.shape[0]
    class_list = [_py(c) for c in classes]
    k = len(class_list)
    if k < 2:
        raise DataError(f"classes must list at least two classes, got {class_list!r}")
    if len(set(class_list)) != k:
        raise DataError(f"classes lists a class twice: {class_list!r}")
    if not 0.0 <= threshold <= 1.0:
        raise DataError(f"threshold must lie in [0, 1], got {threshold!r}")
    pred = _to_numpy(proba_or_labels, "predictions")
    _check_same_length(n, pred, "predictions")
    weights = _weights(sample_weight, n)
    y = _encode_labels(truth, class_list, "y_true")
    notes: list[str] = []

    proba = _proba_matrix(pred, k)
    if proba is None:
        if pred.ndim != 1:
            raise DataError("predicted labels must be one-dimensional, one label per row")
        if pred.dtype.kind == "f" and np.isnan(pred).any():
            raise DataError("predictions hold NaN; drop or fill those rows before evaluating")
        predicted = _encode_labels(pred, class_list, "predicted labels")
        notes.append(
            "predictions are labels, not probabilities: log_loss, roc_auc, pr_auc, curves "
            "and calibration need probabilities and are None"
        )
    elif k == 2:
        predicted = (proba[:, 1] >= threshold).astype(np.int64)
    else:
        predicted = np.argmax(proba, axis=1).astype(np.int64)

    w = np.ones(n) if weights is None else weights
    matrix = np.zeros((k, k))
    np.add.at(matrix, (y, predicted), w)
    true_count = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    hits = np.diag(matrix)
    precision = np.divide(hits, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(hits, true_count, out=np.zeros(k), where=true_count > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    accuracy = float(hits.sum() / matrix.sum())

    per_class: list[dict[str, Any]] = [
        {
            "class": class_list[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1_score": float(f1[i]),
            "support": int(true_count[i]) if weights is None else float(true_count[i]),
            "roc_auc": None,
            "pr_auc": None,
        }
        for i in range(k)
    ]
    absent = [class_list[i] for i in range(k) if true_count[i] <= 0]
    if absent:
        notes.append(f"classes with no rows in y_true (recall 0 by convention): {absent!r}")

    log_loss: float | None = None
    roc_auc: float | None = None
    pr_auc: float | None = None
    roc_curves: list[dict[str, Any]] = []
    pr_curves: list[dict[str, Any]] = []
    calibration: dict[str, Any] | None = None
    if proba is not None:
        eps = np.finfo(np.float64).eps
        p_true = np.clip(proba[np.arange(n), y], eps, 1 - eps)
        log_loss = _wmean(-np.log(p_true), weights)
        scored = [1] if k == 2 else list(range(k))
        aucs: list[float] = []
        aps: list[float] = []
        undefined: list[Any] = []
        for i in scored:
            positive = y == i
            fps, tps, cuts = _binary_curve(positive, proba[:, i], weights)
            auc = _roc_auc(fps, tps)
            ap = _average_precision(fps, tps)
            per_class[i]["roc_auc"] = auc
            per_class[i]["pr_auc"] = ap
            if auc is None:
                undefined.append(class_list[i])
            else:
                aucs.append(auc)
                roc_curves.append(_roc_points(fps, tps, cuts, class_list[i]))
            if ap is not None:
                aps.append(ap)
                pr_curves.append(_pr_points(fps, tps, cuts, class_list[i]))
        if k == 2:
            roc_auc = per_class[1]["roc_auc"]
            pr_auc = per_class[1]["pr_auc"]
            if roc_auc is None:
                notes.append(
                    f"y_true holds a single class ({class_list[int(y[0])]!r}): roc_auc is "
                    "undefined and None" + ("" if pr_auc is not None else ", and so is pr_auc")
                )
            calibration = _calibration(y == 1, proba[:, 1], weights, f"P({class_list[1]!r})")
        else:
            if aucs:
                roc_auc = float(np.mean(aucs))
            if aps:
                pr_auc = float(np.mean(aps))
            if undefined:
                notes.append(
                    "roc_auc is undefined for classes that are all or none of y_true "
                    f"{undefined!r}; the macro average "
                    + ("is over the others" if aucs else "is None")
                )
            top = np.argmax(proba, axis=1)
            calibration = _calibration(
                top == y, proba[np.arange(n), top], weights, "confidence of the top class"
            )

    if k == 2:
        summary = (float(precision[1]), float(recall[1]), float(f1[1]))
    else:
        summary = (float(precision.mean()), float(recall.mean()), float(f1.mean()))
    unweighted = weights is None
    return {
        "task": "classification",
        "num_examples": n,
        "threshold": float(threshold) if k == 2 and proba is not None else None,
        "positive_class": class_list[1] if k == 2 else None,
        "precision": summary[0],
        "recall": summary[1],
        "accuracy": accuracy,
        "f1_score": summary[2],
        "log_loss": _float_or_none(log_loss),
        "roc_auc": _float_or_none(roc_auc),
        "pr_auc": _float_or_none(pr_auc),
        "per_class": per_class,
        "confusion_matrix": {
            "labels": class_list,
            "rows": "true class",
            "columns": "predicted class",
            "matrix": matrix.astype(np.int64).tolist() if unweighted else matrix.tolist(),
        },
        "roc_curve": roc_curves,
        "pr_curve": pr_curves,
        "calibration": calibration,
        "notes": notes,
    }


# --------------------------------------------------------------------------- regression


def _residual_summary(residuals: FloatArray) -> dict[str, Any]:
    counts, edges = np.histogram(residuals, bins=RESIDUAL_HISTOGRAM_BINS)
    return {
        "definition": "y_true - y_pred",
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "min": float(residuals.min()),
        "max": float(residuals.max()),
        "quantiles": {str(q): float(np.quantile(residuals, q)) for q in RESIDUAL_QUANTILES},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _score(numerator: float, denominator: float) -> float:
    """``1 - numerator / denominator``; with a constant ``y_true`` 1.0 if perfect, else 0.0."""
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else 0.0
    return 1.0 - numerator / denominator


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Metrics of a regressor, named as ``ML.EVALUATE`` names them, with a residual summary.

    ``mean_squared_log_error`` is ``mean((log1p(y_true) - log1p(y_pred))**2)``; it is ``None``
    with a note when a value is below 0 (the log is undefined there; clip predictions at 0 if
    the target cannot be negative). When ``y_true`` is constant, ``r2_score`` and
    ``explained_variance`` are 1.0 for perfect predictions and 0.0 otherwise (scikit-learn's
    convention), with a note. Residuals are ``y_true - y_pred``.
    """
    truth = _to_numpy(y_true, "y_true")
    pred = _to_numpy(y_pred, "y_pred")
    for array, name in ((truth, "y_true"), (pred, "y_pred")):
        if array.ndim != 1:
            raise DataError(f"{name} must be one-dimensional, one value per row")
    _check_rows(truth, "y_true")
    _check_same_length(truth.shape[0], pred, "y_pred")
    t = _as_finite_float(truth, "y_true")
    p = _as_finite_float(pred, "y_pred")
    notes: list[str] = []
    residuals = t - p
    squared = residuals**2
    mse = float(squared.mean())
    msle: float | None = None
    if (t < 0).any() or (p < 0).any():
        notes.append(
            "mean_squared_log_error is None: y_true or y_pred holds values below 0, where the "
            "log is undefined"
        )
    else:
        msle = float(((np.log1p(t) - np.log1p(p)) ** 2).mean())
    variance = float(((t - t.mean()) ** 2).mean())
    if variance == 0.0:
        notes.append("y_true is constant: r2_score and explained_variance are 1.0 or 0.0 only")
    return {
        "task": "regression",
        "num_examples": int(t.size),
        "mean_absolute_error": float(np.abs(residuals).mean()),
        "mean_squared_error": mse,
        "root_mean_squared_error": math.sqrt(mse),
        "mean_squared_log_error": msle,
        "median_absolute_error": float(np.median(np.abs(residuals))),
        "r2_score": _score(mse, variance),
        "explained_variance": _score(float(residuals.var()), variance),
        "residuals": _residual_summary(residuals),
        "notes": notes,
    }


# --------------------------------------------------------------------------- clustering


def _squared_distances(a: FloatArray, b: FloatArray) -> FloatArray:
    d: FloatArray = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _silhouette(x: FloatArray, codes: IntArray, k: int) -> float:
    """Mean silhouette coefficient of the rows of ``x``, in blocks of rows to bound memory."""
    n = x.shape[0]
    onehot = np.zeros((n, k))
    onehot[np.arange(n), codes] = 1.0
    sizes = onehot.sum(axis=0)
    scores = np.empty(n)
    block = max(1, min(n, 4_000_000 // max(n, 1)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        d = np.sqrt(_squared_distances(x[start:stop], x))
        d[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums = d @ onehot  # (block, k): total distance to each cluster
        own = codes[start:stop]
        own_size = sizes[own]
        a = np.divide(
            sums[np.arange(stop - start), own],
            own_size - 1,
            out=np.zeros(stop - start),
            where=own_size > 1,
        )
        mean_other = sums / np.where(sizes > 0, sizes, 1.0)
        mean_other[np.arange(stop - start), own] = np.inf
        mean_other[:, sizes == 0] = np.inf
        b = mean_other.min(axis=1)
        denom = np.maximum(a, b)
        s = np.divide(b - a, denom, out=np.zeros(stop - start), where=denom > 0)
        s[own_size <= 1] = 0.0  # a singleton cluster scores 0, as Rousseeuw defines it
        scores[start:stop] = s
    return float(scores.mean())


def clustering_metrics(
    X: Any,
    labels: Any,
    centroids: Any = None,
    *,
    sample_size: int = SILHOUETTE_SAMPLE_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of a clustering, named as ``ML.EVALUATE`` names them for k-means, plus silhouette.

    ``X`` is an ``(n, d)`` numeric array; ``labels`` assigns each row a cluster. With
    ``centroids`` (a ``(k, d)`` array) labels must be integers in ``[0, k)`` indexing its rows,
    and both ``mean_squared_distance`` (mean squared Euclidean distance of a row to its
    centroid) and ``davies_bouldin_index`` use them; without, each cluster's centroid is the mean
    of its rows, which is scikit-learn's ``davies_bouldin_score``. Clusters with no rows are left
    out of the index.

    ``silhouette_score`` is exact for up to ``sample_size`` rows; above that it is computed on a
    uniform sample of ``sample_size`` rows drawn with ``seed`` (the full score is quadratic in
    rows; a 10,000-row sample estimates it to about 0.01). It is ``None`` with a note when there
    are fewer than 2 clusters or as many clusters as rows.
    """
    x = _to_numpy(X, "X")
    if x.ndim != 2:
        raise DataError(f"X must be two-dimensional (rows x features), got {x.ndim} dimension(s)")
    _check_rows(x, "X")
    x = _as_finite_float(x, "X")
    assigned = _to_numpy(labels, "labels")
    if assigned.ndim != 1:
        raise DataError("labels must be one-dimensional, one cluster per row")
    n = x.shape[0]
    if assigned.shape[0] != n:
        raise DataError(f"labels has {assigned.shape[0]} rows but X has {n}; pass one per row")
    if sample_size < 2:
        raise DataError(f"sample_size must be at least 2, got {sample_size}")
    notes: list[str] = []

    if centroids is None:
        uniques, codes_raw = np.unique(assigned, return_inverse=True)
        codes = codes_raw.astype(np.int64).reshape(-1)
        k = uniques.size
        centers = np.zeros((k, x.shape[1]))
        np.add.at(centers, codes, x)
        centers /= np.bincount(codes, minlength=k)[:, None]
        names = [_py(u) for u in uniques]
    else:
        centers = _as_finite_float(_to_numpy(centroids, "centroids"), "centroids")
        if centers.ndim != 2 or centers.shape[1] != x.shape[1]:
            raise DataError(
                f"centroids must be a (clusters x {x.shape[1]}) array, got shape {centers.shape}"
            )
        k = centers.shape[0]
        if assigned.dtype.kind not in "iu":
            raise DataError("with centroids, labels must be integer indexes of centroid rows")
        codes = assigned.astype(np.int64)
        if codes.min() < 0 or codes.max() >= k:
            raise DataError(f"labels must lie in [0, {k}) to index the {k} centroids")
        names = list(range(k))

    sizes = np.bincount(codes, minlength=k)
    present = np.flatnonzero(sizes > 0)
    to_center = ((x - centers[codes]) ** 2).sum(axis=1)

    davies_bouldin: float | None = None
    if present.size < 2:
        notes.append("fewer than 2 clusters hold rows: davies_bouldin_index is None")
    else:
        spread = np.zeros(k)
        np.add.at(spread, codes, np.sqrt(to_center))
        spread = spread[present] / sizes[present]
        between = np.sqrt(_squared_distances(centers[present], centers[present]))
        np.fill_diagonal(between, 0.0)
        if np.allclose(spread, 0.0) or np.allclose(between, 0.0):
            davies_bouldin = 0.0
        else:
            # Coinciding centroids (the diagonal included) add nothing, as in scikit-learn.
            between[between == 0.0] = np.inf
            ratio = (spread[:, None] + spread[None, :]) / between
            davies_bouldin = float(ratio.max(axis=1).mean())

    silhouette: float | None = None
    if present.size < 2 or present.size >= n:
        notes.append(
            "silhouette_score needs 2 <= clusters <= rows - 1 "
            f"(got {present.size} clusters, {n} rows): None"
        )
    else:
        rows = np.arange(n)
        if n > sample_size:
            rows = np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
            notes.append(
                f"silhouette_score is on a seeded sample of {sample_size} of {n} rows (seed {seed})"
            )
        _, sample_codes = np.unique(codes[rows], return_inverse=True)
        sampled_k = int(sample_codes.max()) + 1
        if sampled_k >= 2 and sampled_k < rows.size:
            silhouette = _silhouette(x[rows], sample_codes.astype(np.int64), sampled_k)

    return {
        "task": "clustering",
        "num_examples": n,
        "num_clusters": int(present.size),
        "davies_bouldin_index": davies_bouldin,
        "mean_squared_distance": float(to_center.mean()),
        "silhouette_score": silhouette,
        "cluster_sizes": [{"cluster": names[i], "num_examples": int(sizes[i])} for i in range(k)],
        "notes": notes,
    }
