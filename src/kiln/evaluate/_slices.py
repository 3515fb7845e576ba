"""Sliced metrics: the same metrics on the rows that share a feature value (TFMA's slicing).

A model that is good on average can be bad for one country, one device, one age band. This
module computes a metric function on the whole evaluation set and on each slice of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from kiln.errors import DataError, KilnError

__all__ = ["MAX_SLICE_VALUES", "sliced_metrics"]

MAX_SLICE_VALUES = 100
"""A slicing column (or cross) with more distinct values than this is refused: bucketize it."""

MetricFn = Callable[[Any, Any], Mapping[str, Any]]


def _column(source: Any, name: str) -> list[Any]:
    """One column of a pyarrow table, a polars frame or a mapping, as Python values."""
    try:
        if isinstance(source, pa.Table):
            return list(source.column(name).to_pylist())
        values = source[name]  # a mapping, a polars DataFrame
    except (KeyError, IndexError) as exc:
        raise DataError(f"slice column {name!r} is not in the evaluation data") from exc
    except Exception as exc:  # polars raises its own ColumnNotFoundError
        if type(exc).__name__ == "ColumnNotFoundError":
            raise DataError(f"slice column {name!r} is not in the evaluation data") from exc
        raise
    if hasattr(values, "to_list"):
        return list(values.to_list())
    if hasattr(values, "to_pylist"):
        return list(values.to_pylist())
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _sort_key(value: tuple[Any, ...]) -> tuple[Any, ...]:
    # None last; values of one column share a type, so they compare; str() as a fallback.
    return tuple((v is None, "" if v is None else v) for v in value)


def sliced_metrics(
    table_or_columns: Any,
    y_true: Any,
    pred: Any,
    *,
    slice_by: Sequence[str | Sequence[str]],
    metric_fn: MetricFn,
    max_values: int = MAX_SLICE_VALUES,
) -> list[dict[str, Any]]:
    """``metric_fn`` on all rows and on each slice of rows sharing a value of a ``slice_by`` column.

    ``table_or_columns`` is a pyarrow table, a polars frame or a mapping of column name to
    values, aligned row by row with ``y_true`` and ``pred`` (``pred`` may be an ``(n, k)``
    probability matrix). An entry of ``slice_by`` is a column name, or a list of names for a
    feature cross (one slice per combination of values present). ``metric_fn(y_true, pred)``
    returns a dict of metrics, for example
    ``functools.partial(classification_metrics, classes=[0, 1])``.

    Returns a list of ``{"slice": {column: value}, "num_examples": n, **metrics}``: the overall
    slice first (``"slice": {}``), then per entry of ``slice_by`` its values in sorted order,
    missing values (``None``, ``NaN``) last as ``None``. A slice whose metrics cannot be
    computed (``metric_fn`` raises a :class:`~kiln.errors.KilnError`, say for a slice with one
    row) gets ``"error"`` with the message instead of metrics, so one bad slice does not hide
    the others.
    """
    truth = np.asarray(y_true)
    predictions = np.asarray(pred)
    n = truth.shape[0] if truth.ndim else 0
    if predictions.ndim == 0 or predictions.shape[0] != n:
        raise DataError(
            f"pred has {predictions.shape[0] if predictions.ndim else 0} rows but y_true has "
            f"{n}; pass one prediction per row"
        )
    results = [{"slice": {}, "num_examples": n, **dict(metric_fn(truth, predictions))}]
    for spec in slice_by:
        columns = [spec] if isinstance(spec, str) else list(spec)
        if not columns:
            raise DataError("slice_by holds an empty feature cross; name at least one column")
        values = [[_normalise(v) for v in _column(table_or_columns, c)] for c in columns]
        for column, column_values in zip(columns, values, strict=True):
            if len(column_values) != n:
                raise DataError(
                    f"slice column {column!r} has {len(column_values)} rows but y_true has {n}"
                )
        keys = list(zip(*values, strict=True))
        try:
            distinct = sorted(set(keys), key=_sort_key)
        except TypeError as exc:
            raise DataError(
                f"slice column(s) {columns!r} hold values that cannot be compared or hashed "
                f"(lists or mixed types): {exc}"
            ) from exc
        if len(distinct) > max_values:
            raise DataError(
                f"slicing by {columns!r} gives {len(distinct)} slices, more than max_values="
                f"{max_values}; bucketize the column or raise max_values"
            )
        codes = {key: i for i, key in enumerate(distinct)}
        index = np.fromiter((codes[key] for key in keys), dtype=np.int64, count=n)
        for i, key in enumerate(distinct):
            mask = index == i
            entry: dict[str, Any] = {
                "slice": dict(zip(columns, key, strict=True)),
                "num_examples": int(mask.sum()),
            }
            try:
                entry.update(metric_fn(truth[mask], predictions[mask]))
            except KilnError as exc:
                entry["error"] = str(exc)
            results.append(entry)
    return results
