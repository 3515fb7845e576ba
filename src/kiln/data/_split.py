"""Deterministic splits of a table: by hashing a key or the whole row, or in time order.

:func:`split_table` is TFX ExampleGen's hash split. Each row goes to the split its hash falls in,
so a row's split depends on the row's values (or its key's) and the seed only: never on the row
order, on how the table was chunked or on which files it came from. Rows of one key always land
together. The hash is stable across Kiln, DuckDB and platform versions:

* each hashed value is written as text (DuckDB's ``CAST(… AS VARCHAR)``, time zone UTC), as
  ``v<length>:<text>``, and a NULL as ``n``, so that NULL, the string ``"NULL"`` and an empty
  string all differ, and field boundaries cannot shift;
* the fields are joined in column order after the seed (``<seed>|``), and hashed with MD5;
* the first 8 bytes of the digest, read as a big-endian unsigned integer and divided by 2**64,
  give a number ``u`` in [0, 1); the splits take consecutive intervals of [0, 1) in the order
  the ratios are given (``{"train": 0.8, "eval": 0.2}``: ``u < 0.8`` is train).

(DuckDB's ``hash`` and ``md5_number`` are not used: their values have changed between DuckDB
versions.) Each split keeps the input's row order.

:func:`split_by_time` orders rows by a column and cuts: the first 80 % of the time-ordered rows
are train, and so on. Rows that tie on a boundary value all go to the earlier split.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiln.errors import DataError

__all__ = ["DEFAULT_RATIOS", "split_by_time", "split_hashes", "split_table"]

DEFAULT_RATIOS: Mapping[str, float] = {"train": 0.8, "eval": 0.2}
"""ExampleGen's default: 80 % train, 20 % eval."""

_TOLERANCE = 1e-9
_ROW = "__kiln_row__"
_LOCAL = threading.local()
_HEX = np.zeros(256, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def split_table(
    table: pa.Table | pa.RecordBatch,
    ratios: Mapping[str, float] = DEFAULT_RATIOS,
    *,
    key: str | None = None,
    seed: int = 0,
) -> dict[str, pa.Table]:
    """Split ``table`` by ratios into named tables, hashing the ``key`` column or the whole row.

    ``ratios`` maps each split's name to its fraction; the fractions must be positive and sum
    to 1. Without ``key``, identical rows share a split; with it, all rows of a key do. A
    different ``seed`` gives a different, equally deterministic, assignment. The result holds
    every split named in ``ratios`` (an empty table where no row fell), rows in input order.
    """
    names, bounds = _check_ratios(ratios)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    u = split_hashes(table, key=key, seed=seed)
    assignment = np.searchsorted(bounds, u, side="right")
    return {
        name: table.take(pa.array(np.flatnonzero(assignment == i))) for i, name in enumerate(names)
    }


def split_hashes(table: pa.Table, *, key: str | None = None, seed: int = 0) -> np.ndarray:
    """Each row's position in [0, 1) (float64), from the stable hash of its ``key`` or its values.

    The building block of :func:`split_table`, exposed so that a stream of batches can be split
    one batch at a time with the very same assignment.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"the split seed must be an integer, not {seed!r}")
    if key is not None:
        if key not in table.column_names:
            raise DataError(
                f"no key column {key!r} to split on; the columns are: "
                f"{', '.join(table.column_names) or '(none)'}"
            )
        columns = [key]
    else:
        columns = list(table.column_names)
        if not columns and table.num_rows:
            raise DataError("cannot split a table without columns by hashing its rows")
    if table.num_rows == 0:
        return np.zeros(0, dtype=np.float64)
    top = _md5_prefixes(table.select(columns), seed)
    return top.astype(np.float64) / 2.0**64


def _md5_prefixes(table: pa.Table, seed: int) -> np.ndarray:
    """The first 8 bytes (big-endian uint64) of the MD5 of each row's canonical text."""
    import duckdb

    inputs = pa.table(
        {
            **{f"c{i}": column for i, column in enumerate(table.columns)},
            _ROW: pa.array(np.arange(table.num_rows, dtype=np.int64)),
        }
    )
    texts = ", ".join(f'CAST("c{i}" AS VARCHAR) AS t{i}' for i in range(table.num_columns))
    fields = " || ".join(
        f"coalesce('v' || strlen(t{i}) || ':' || t{i}, 'n')" for i in range(table.num_columns)
    )
    query = (
        f"SELECT {_ROW}, md5('{seed}|' || {fields}) AS digest "
        f"FROM (SELECT {_ROW}, {texts} FROM kiln_rows)"
    )
    con = _connection()
    con.register("kiln_rows", inputs)
    try:
        result = con.sql(query).to_arrow_table()
    except duckdb.Error as e:
        raise DataError(f"cannot hash the rows to split them: {e}") from e
    finally:
        con.unregister("kiln_rows")
    rows = result.column(_ROW).to_numpy()
    digest = result.column("digest").combine_chunks()
    if not pa.types.is_string(digest.type):
        digest = digest.cast(pa.string())
    offsets = np.frombuffer(digest.buffers()[1], dtype=np.int32)[
        digest.offset : digest.offset + len(digest) + 1
    ]
    if not np.all(np.diff(offsets) == 32):  # pragma: no cover - md5() is 32 hex digits
        raise DataError("internal error: MD5 digests are not 32 hex digits long")
    data = np.frombuffer(digest.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    hexes = data[start : start + 32 * len(digest)].reshape(-1, 32)[:, :16]
    nibbles = _HEX[hexes].astype(np.uint64)
    top = np.zeros(len(digest), dtype=np.uint64)
    for i in range(16):
        top = (top << np.uint64(4)) | nibbles[:, i]
    out = np.empty(table.num_rows, dtype=np.uint64)
    out[rows] = top
    return out


def _connection() -> Any:
    """This thread's DuckDB connection (time zone UTC), made once: connecting costs ~30 ms."""
    import duckdb

    con = getattr(_LOCAL, "con", None)
    if con is None or getattr(_LOCAL, "pid", None) != os.getpid():
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        _LOCAL.con, _LOCAL.pid = con, os.getpid()
    return con


def split_by_time(
    table: pa.Table | pa.RecordBatch,
    column: str,
    ratios: Mapping[str, float] = DEFAULT_RATIOS,
) -> dict[str, pa.Table]:
    """Split ``table`` in the order of ``column``: the earliest rows to the first split, and so on.

    Split *i* takes the rows up to the cumulative fraction of its ratio in time order; rows whose
    value ties with the last value of a split stay with it, so one instant is never cut in two
    (a later split can come out smaller, or empty). ``column`` must be orderable (a timestamp,
    date, time, number or string) and hold no null or NaN. Rows keep the input order in each split.
    """
    names, bounds = _check_ratios(ratios)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if column not in table.column_names:
        raise DataError(
            f"no column {column!r} to split on by time; the columns are: "
            f"{', '.join(table.column_names) or '(none)'}"
        )
    values = table.column(column)
    kind = values.type
    orderable = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    )
    if not orderable:
        raise DataError(
            f"column {column!r} is of type {kind}, which has no time order; split on a timestamp, "
            "date, number or string column"
        )
    nulls = values.null_count
    if pa.types.is_floating(kind):
        nulls += pc.sum(pc.is_nan(values)).as_py() or 0
    if nulls:
        raise DataError(
            f"column {column!r} has {nulls} null or NaN value(s) out of {len(values)}; a time "
            "split needs a time for every row: drop or fill them first"
        )
    n = table.num_rows
    ordered = values.take(pc.sort_indices(values))
    result: dict[str, pa.Table] = {}
    low: pa.Scalar | None = None
    for i, name in enumerate(names):
        last = i == len(names) - 1
        cut = n if last else min(n, round(float(bounds[i]) * n))
        if cut == 0 or (low is not None and pc.less_equal(ordered[cut - 1], low).as_py()):
            result[name] = table.slice(0, 0)
            continue
        high = ordered[cut - 1]
        mask = pc.less_equal(values, high)
        if low is not None:
            mask = pc.and_(mask, pc.greater(values, low))
        result[name] = table.filter(mask)
        low = high
    return result


def _check_ratios(ratios: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """The split names and the upper bound of each split's interval of [0, 1)."""
    if not isinstance(ratios, Mapping) or not ratios:
        raise DataError(
            f"split ratios must be a non-empty mapping of name to fraction, not {ratios!r}; "
            'e.g. {"train": 0.8, "eval": 0.2}'
        )
    names: list[str] = []
    fractions: list[float] = []
    for name, ratio in ratios.items():
        if not isinstance(name, str) or not name:
            raise DataError(f"split names must be non-empty strings, not {name!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise DataError(f"the ratio of split {name!r} must be a number, not {ratio!r}")
        if not math.isfinite(ratio) or ratio <= 0:
            raise DataError(f"the ratio of split {name!r} must be positive, not {ratio!r}")
        names.append(name)
        fractions.append(float(ratio))
    total = math.fsum(fractions)
    if abs(total - 1.0) > _TOLERANCE:
        shown = ", ".join(f"{n}={r:g}" for n, r in zip(names, fractions, strict=True))
        raise DataError(f"split ratios must sum to 1, but {shown} sum to {total:.10g}")
    bounds = np.cumsum(fractions)
    bounds[-1] = 1.0 + 1.0  # every u in [0, 1) falls before the last bound, whatever rounding
    return names, bounds
