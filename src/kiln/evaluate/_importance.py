"""Global feature importance by permutation: model-agnostic, it needs only a predict function.

Shuffle one feature's column, predict again, and see how much the metric drops: a feature the
model relies on costs a lot when shuffled, a feature it ignores costs nothing (Breiman 2001;
scikit-learn's ``permutation_importance``). It takes a callable rather than a model so that the
evaluation layer never imports a trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from kiln.errors import DataError

__all__ = ["permutation_importance"]


def _features(X: Any) -> list[str]:
    if isinstance(X, pa.Table):
        return list(X.column_names)
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise DataError(f"X must be two-dimensional (rows x features), got {X.ndim} dims")
        return [str(i) for i in range(X.shape[1])]
    if isinstance(X, Mapping):
        return [str(k) for k in X]
    if hasattr(X, "columns"):  # a polars DataFrame
        return [str(c) for c in X.columns]
    raise DataError(
        f"X must be a pyarrow table, a polars frame, a 2-D NumPy array or a mapping of columns, "
        f"got {type(X).__name__}"
    )


def _num_rows(X: Any) -> int:
    if isinstance(X, pa.Table):
        return int(X.num_rows)
    if isinstance(X, np.ndarray):
        return int(X.shape[0])
    if isinstance(X, Mapping):
        return len(next(iter(X.values()))) if X else 0
    return int(X.height)


def _permuted(X: Any, feature: str, position: int, order: np.ndarray[Any, Any]) -> Any:
    """``X`` with the column ``feature`` reordered by ``order``; the other columns unchanged."""
    if isinstance(X, pa.Table):
        index = X.column_names.index(feature)
        return X.set_column(index, feature, X.column(feature).take(pa.array(order)))
    if isinstance(X, np.ndarray):
        copy = X.copy()
        copy[:, position] = X[order, position]
        return copy
    if isinstance(X, Mapping):
        out = dict(X)
        out[feature] = np.asarray(X[feature])[order]
        return out
    import polars as pl

    return X.with_columns(X.get_column(feature).gather(pl.Series(order)))


def permutation_importance(
    predict_fn: Callable[[Any], Any],
    X: Any,
    y: Any,
    metric: Callable[[Any, Any], float],
    n_repeats: int = 5,
    seed: int = 0,
    *,
    higher_is_better: bool = True,
    features: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Permutation importance of each feature of ``X`` for the model behind ``predict_fn``.

    ``predict_fn(X)`` returns predictions for ``X`` (a pyarrow table, a polars frame, a 2-D
    NumPy array whose features are named ``"0"``, ``"1"``, ..., or a mapping of column to
    values; the function receives the same kind with one column shuffled). ``metric(y, pred)``
    scores predictions, for example ``roc_auc`` taken from :func:`classification_metrics`.

    Importance of a feature = baseline score minus the score with that feature shuffled (the
    other way round when ``higher_is_better`` is False), over ``n_repeats`` shuffles drawn from
    ``seed``. Returns ``{"metric_value": baseline score, "n_repeats": ..., "features": [...]}``
    with one ``{"feature", "importance_mean", "importance_std", "importances"}`` per feature,
    most important first. Importance near 0 (or below) means the model does not rely on it;
    correlated features share importance, so each may look less important than it is.
    """
    if n_repeats < 1:
        raise DataError(f"n_repeats must be at least 1, got {n_repeats}")
    names = _features(X)
    n = _num_rows(X)
    if n == 0:
        raise DataError("X is empty: there are no rows to permute")
    chosen = list(names) if features is None else list(features)
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise DataError(f"features {unknown!r} are not columns of X; its columns are {names!r}")

    def score(data: Any) -> float:
        value = float(metric(y, predict_fn(data)))
        if not np.isfinite(value):
            raise DataError(f"metric returned {value!r}; it must return a finite number")
        return value

    baseline = score(X)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for feature in chosen:
        position = names.index(feature)
        drops = []
        for _ in range(n_repeats):
            permuted = score(_permuted(X, feature, position, rng.permutation(n)))
            drops.append(baseline - permuted if higher_is_better else permuted - baseline)
        values = np.asarray(drops)
        rows.append(
            {
                "feature": feature,
                "importance_mean": float(values.mean()),
                "importance_std": float(values.std()),
                "importances": values.tolist(),
            }
        )
    rows.sort(key=lambda row: -row["importance_mean"])
    return {"metric_value": baseline, "n_repeats": n_repeats, "features": rows}
