"""Dataset statistics (TFDV's ``generate_statistics``), computed per batch and mergeable.

:class:`StatisticsAccumulator` reads Arrow batches one at a time and keeps, per feature, only what
merges exactly the way one pass would:

* counts, finite-value count, mean and M2 (Chan et al.'s parallel Welford update, for a
  numerically stable mean and standard deviation), exact min / max, zeros, NaN and ±inf counts;
* the finite values themselves while a feature has at most ``EXACT_VALUES_CAP`` (2M, 16 MB):
  the median, the equal-width histogram and the quantiles histogram are then exact and the same
  on every run; past the cap, a KLL doubles sketch (``k = 350``, normalized rank error
  0.77 % <= 1 %) answers them;
* exact value counts for strings, bytes and bools (merged by key), up to ``EXACT_KEYS_CAP``
  distinct values per feature. Past the cap the rarest values are dropped (the top values of a
  column with that many distinct values are then lower bounds, exact for the values whose count
  exceeds any dropped count) and the distinct count comes from a HyperLogLog sketch
  (``lg_k = 12``, about 1.6 % relative error) that from then on sees every value. Below the cap
  the distinct count is exact. Memory per feature is bounded by the cap.

Decisions, as TFDV makes them where it has an opinion:

* Numeric statistics (mean, std dev, median, min, max, histograms) cover finite values only;
  NaN and ±inf are counted apart. The standard deviation is the population one (ddof=0).
* The equal-width histogram has ``BUCKETS`` buckets between the finite min and max; its counts are
  exact below the cap, and read from the KLL sketch's CDF at the bucket edges past it (within the
  sketch's rank error, rounded to whole values so they sum to the count). A feature whose
  finite values are all equal gets one bucket ``[v, v]``.
* The quantiles histogram has ``BUCKETS`` equal-mass buckets whose edges are the deciles (the
  inverted CDF, as the sketch answers); each holds ``n / BUCKETS`` values (fractional, as TFDV).
* BOOL: numeric statistics on 0/1 (the mean is the fraction of true) and string statistics with
  ``"true"`` / ``"false"`` as top values.
* DATETIME (timestamps, dates): numeric statistics on seconds since the Unix epoch (UTC).
* BYTES: string statistics; ``invalid_utf8`` counts values that do not decode, and a top value
  that does not decode is shown with backslash escapes. ``avg_length`` is in bytes; for STRING it
  is in characters.
* Lists: the feature has its item's type and statistics over all items; ``values_per_row`` gives
  the min, max and mean number of items in the rows that have a list. Nested lists are flattened.
* A row "has" a feature when its value is not null; ``num_missing`` is the rest of the rows,
  counting rows of batches (or shards) that lack the column altogether.
* A column that holds only nulls in every batch (Arrow's ``null`` type) is reported as STRING with
  no values.

Below the cap every field is the same whatever the batching, sharding or ``threads`` (the mean
and std dev up to floating-point rounding), so a Statistics artifact fingerprints the same on
every run. The KLL sketch compacts at random: past the cap, the median, histogram counts and
quantile edges can differ slightly between two runs (always within the rank error).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import datasketches as ds
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from kiln.data._model import (
    BUCKETS,
    TOP_VALUES_KEPT,
    Bucket,
    DatasetStatistics,
    FeatureStatistics,
    NumericStatistics,
    Statistics,
    StringStatistics,
    TopValue,
    ValuesPerRow,
)
from kiln.errors import DataError

__all__ = [
    "EXACT_KEYS_CAP",
    "KLL_K",
    "StatisticsAccumulator",
    "generate_split_statistics",
    "generate_statistics",
]

EXACT_VALUES_CAP = 2_000_000
"""Finite values per numeric feature kept exactly (16 MB); past it, the KLL sketch takes over."""
KLL_K = 350
"""KLL sketch size: ``kll_doubles_sketch.get_normalized_rank_error(350, False)`` is 0.0077."""
HLL_LG_K = 12
EXACT_KEYS_CAP = 100_000
_PARALLEL_ROWS = 65_536  # batches smaller than this are not worth a thread pool
"""Distinct values per feature whose counts are kept exactly (see the module docstring)."""

_NUMERIC_KINDS = ("INT", "FLOAT", "BOOL", "DATETIME")
_STRING_KINDS = ("STRING", "BYTES", "BOOL")


def _kind(t: pa.DataType, column: str) -> str | None:
    """The Kiln feature type of an Arrow item type (``None`` for Arrow's ``null`` type)."""
    if pa.types.is_null(t):
        return None
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_integer(t):
        return "INT"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "FLOAT"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "STRING"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BYTES"
    if pa.types.is_binary_view(t):
        return "BYTES"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "DATETIME"
    if pa.types.is_dictionary(t):
        return _kind(t.value_type, column)
    raise DataError(
        f"column {column!r}: statistics do not support Arrow type {t}; "
        "cast it to a number, string, bool, timestamp or list of those first"
    )


def _is_list(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    )


def _item_type(t: pa.DataType) -> pa.DataType:
    while _is_list(t):
        t = t.value_type
    return t


def _to_float(values: pa.ChunkedArray, kind: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Non-null values as float64 (datetimes as epoch seconds, bools as 0/1)."""
    t = values.type
    if pa.types.is_dictionary(t):
        values = values.cast(t.value_type)
        t = t.value_type
    if kind == "DATETIME":
        if pa.types.is_date32(t):
            days = values.cast(pa.int32()).to_numpy()
            return np.asarray(days, dtype=np.float64) * 86400.0
        if pa.types.is_date64(t):
            ms = values.cast(pa.int64()).to_numpy()
            return np.asarray(ms, dtype=np.float64) / 1e3
        per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        raw = values.cast(pa.int64()).to_numpy()
        return np.asarray(raw, dtype=np.float64) / per_second
    if kind == "BOOL" or pa.types.is_decimal(t):
        values = values.cast(pa.float64())
    return np.asarray(values.to_numpy(), dtype=np.float64)


class _Numeric:
    """Mergeable numeric state: exact moments and extremes, a KLL sketch for the rest."""

    __slots__ = (
        "exact",
        "kll",
        "m2",
        "max",
        "mean",
        "min",
        "n",
        "nan",
        "neg_inf",
        "pos_inf",
        "zeros",
    )

    def __init__(self) -> None:
        self.n = 0  # finite values
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.zeros = 0
        self.nan = 0
        self.pos_inf = 0
        self.neg_inf = 0
        # Finite values, kept while there are at most EXACT_VALUES_CAP: the median, histograms
        # and quantiles are then exact and deterministic. Past the cap they go into the KLL sketch
        # (<= 1 % rank error), whose compaction is randomised.
        self.exact: list[np.ndarray[Any, np.dtype[np.float64]]] | None = []
        self.kll: Any = None

    def _spill(self) -> None:
        """Move the exact values into a KLL sketch (past the cap, or to merge with a sketch)."""
        if self.kll is None:
            self.kll = ds.kll_doubles_sketch(KLL_K)
        for part in self.exact or []:
            self.kll.update(part)
        self.exact = None

    def _sketch(self) -> Any:
        """A KLL sketch of this state's values, leaving the state as it is."""
        if self.exact is None:
            return self.kll
        sketch = ds.kll_doubles_sketch(KLL_K)
        for part in self.exact:
            sketch.update(part)
        return sketch

    def update(self, v: np.ndarray[Any, np.dtype[np.float64]], *, may_be_nonfinite: bool) -> None:
        if v.size == 0:
            return
        if may_be_nonfinite:
            finite = np.isfinite(v)
            if not finite.all():
                self.nan += int(np.count_nonzero(np.isnan(v)))
                self.pos_inf += int(np.count_nonzero(v == math.inf))
                self.neg_inf += int(np.count_nonzero(v == -math.inf))
                v = v[finite]
                if v.size == 0:
                    return
        n = int(v.size)
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float64 limits
            mean = float(v.mean())
            d = v - mean
            m2 = float(np.einsum("i,i->", d, d))  # not np.dot: BLAS threads cost more here
        self._combine(n, mean, m2)
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        self.zeros += n - int(np.count_nonzero(v))
        # An owned copy: a view would keep the whole record batch alive. (The sketch's binding
        # takes writable arrays only, too: Arrow's buffers are read-only.)
        owned = v.copy() if not v.flags.writeable or v.base is not None else v
        if self.exact is not None:
            self.exact.append(owned)
            if self.n > EXACT_VALUES_CAP:
                self._spill()
        else:
            self.kll.update(owned)

    def _combine(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def merge(self, other: _Numeric) -> None:
        self.nan += other.nan
        self.pos_inf += other.pos_inf
        self.neg_inf += other.neg_inf
        if other.n == 0:
            return
        self._combine(other.n, other.mean, other.m2)
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.zeros += other.zeros
        if self.exact is not None and other.exact is not None and self.n <= EXACT_VALUES_CAP:
            self.exact.extend(other.exact)
            return
        self._spill()
        self.kll.merge(other._sketch())

    def result(self) -> NumericStatistics:
        stats = NumericStatistics(
            mean=None,
            std_dev=None,
            num_zeros=self.zeros,
            min=None,
            median=None,
            max=None,
            num_nan=self.nan,
            num_pos_inf=self.pos_inf,
            num_neg_inf=self.neg_inf,
        )
        if self.n == 0:
            return stats
        # Values near the float64 limits overflow the moments: report none rather than inf.
        std = math.sqrt(max(self.m2, 0.0) / self.n) if math.isfinite(self.m2) else math.nan
        stats.mean = self.mean if math.isfinite(self.mean) else None
        stats.std_dev = std if math.isfinite(std) and stats.mean is not None else None
        stats.min, stats.max = self.min, self.max
        values = np.concatenate(self.exact) if self.exact is not None else None
        # The deciles in one pass (one partition of the values); the median is the fifth.
        deciles = self._ranks([i / BUCKETS for i in range(1, BUCKETS)], values)
        stats.median = deciles[BUCKETS // 2 - 1]
        stats.histogram = self._histogram(values)
        edges = [self.min, *deciles, self.max]
        stats.quantiles = [Bucket(edges[i], edges[i + 1], self.n / BUCKETS) for i in range(BUCKETS)]
        return stats

    def _ranks(
        self, ranks: list[float], values: np.ndarray[Any, np.dtype[np.float64]] | None
    ) -> list[float]:
        """Values at normalised ranks: exact (inverted CDF, as the sketch) or from the sketch."""
        if values is not None:
            found = np.quantile(values, ranks, method="inverted_cdf")
        else:
            found = self.kll.get_quantiles(ranks)
        return [min(max(float(q), self.min), self.max) for q in found]

    def _histogram(self, values: np.ndarray[Any, np.dtype[np.float64]] | None) -> list[Bucket]:
        lo, hi, n = self.min, self.max, self.n
        if lo == hi:
            return [Bucket(lo, hi, float(n))]
        # lo + i * (hi - lo) / BUCKETS, written so that nothing overflows near the float limits.
        t = np.arange(BUCKETS + 1) / BUCKETS
        edges = lo * (1 - t) + hi * t
        edges[0], edges[-1] = lo, hi
        # Fraction of values < each inner edge: bucket i is [edge_i, edge_i+1), the last one
        # includes the max. (Edges can coincide when max - min is a few ulps.)
        inner = edges[1:-1]
        points = np.unique(inner)
        if values is not None:
            below = np.array([np.count_nonzero(values < p) for p in points]) / n
        else:
            below = np.asarray(self.kll.get_cdf(points.tolist(), inclusive=False)[:-1])
        ranks = below[np.searchsorted(points, inner)]
        cum = [0, *(round(n * float(r)) for r in ranks), n]
        cum = [int(c) for c in np.maximum.accumulate(cum)]
        return [
            Bucket(float(edges[i]), float(edges[i + 1]), float(cum[i + 1] - cum[i]))
            for i in range(BUCKETS)
        ]


class _Values:
    """Mergeable value-count state for strings, bytes and bools."""

    __slots__ = ("binary", "cap", "counts", "hll", "invalid_utf8", "length_sum", "n")

    def __init__(self, binary: bool, cap: int) -> None:
        self.binary = binary
        self.cap = cap
        self.counts: pl.DataFrame | None = None  # columns "value", "count" (u64)
        self.hll: ds.hll_sketch | None = None  # built once the counts are capped
        self.n = 0
        self.length_sum = 0
        self.invalid_utf8 = 0

    def update(self, values: pa.ChunkedArray, kind: str) -> None:
        if len(values) == 0:
            return
        t = values.type
        if pa.types.is_dictionary(t):
            values = values.cast(t.value_type)
            t = t.value_type
        if kind == "BOOL":
            values = values.cast(pa.string())
        elif pa.types.is_string_view(t):
            values = values.cast(pa.large_string())
        elif pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
            values = values.cast(pa.large_binary())
        self.n += len(values)
        vc = pc.value_counts(values)
        keys = vc.field("values")
        counts = vc.field("counts")
        if kind in ("STRING", "BYTES"):  # lengths of the distinct values, times their counts
            lengths = pc.utf8_length(keys) if kind == "STRING" else pc.binary_length(keys)
            per_key = np.asarray(pc.fill_null(lengths, 0), dtype=np.int64)
            self.length_sum += int((per_key * np.asarray(counts, dtype=np.int64)).sum())
        if self.binary:
            # Validity of UTF-8 per distinct value, not per row.
            ok = np.fromiter(
                (_valid_utf8(b) for b in keys.to_pylist()), dtype=np.bool_, count=len(keys)
            )
            self.invalid_utf8 += int(np.asarray(counts)[~ok].sum())
        frame = pl.DataFrame(
            {
                "value": pl.Series(keys).cast(pl.Binary if self.binary else pl.String),
                "count": pl.Series(counts).cast(pl.UInt64),
            }
        )
        if self.hll is not None:
            self._feed(frame)
        self._add(frame)

    def _feed(self, frame: pl.DataFrame) -> None:
        assert self.hll is not None
        update = self.hll.update
        if self.binary:
            for b in frame.get_column("value").to_list():
                update(b.decode("latin-1"))
        else:
            for s in frame.get_column("value").to_list():
                update(s)

    def _add(self, frame: pl.DataFrame) -> None:
        if self.counts is None:
            merged = frame
        else:
            merged = pl.concat([self.counts, frame]).group_by("value").agg(pl.col("count").sum())
        if merged.height > self.cap:
            if self.hll is None:
                self.hll = ds.hll_sketch(HLL_LG_K)
                self._feed(merged)
            merged = merged.sort(["count", "value"], descending=[True, False]).head(self.cap)
        self.counts = merged

    def merge(self, other: _Values) -> None:
        self.n += other.n
        self.length_sum += other.length_sum
        self.invalid_utf8 += other.invalid_utf8
        if other.counts is None:
            return
        if other.hll is not None or self.hll is not None:
            if self.hll is None:
                self.hll = ds.hll_sketch(HLL_LG_K)
                if self.counts is not None:
                    self._feed(self.counts)
            if other.hll is not None:
                union = ds.hll_union(HLL_LG_K)
                union.update(self.hll)
                union.update(other.hll)
                self.hll = union.get_result()
            else:
                self._feed(other.counts)
        self._add(other.counts)

    def result(self, kind: str) -> StringStatistics:
        if self.counts is None:
            return StringStatistics(unique=0, top_values=[], avg_length=None, invalid_utf8=0)
        unique = round(self.hll.get_estimate()) if self.hll is not None else self.counts.height
        top = self.counts.sort(["count", "value"], descending=[True, False]).head(TOP_VALUES_KEPT)
        values = top.get_column("value").to_list()
        if self.binary:
            values = [b.decode("utf-8", "backslashreplace") for b in values]
        top_values = [
            TopValue(value=v, count=int(c))
            for v, c in zip(values, top.get_column("count").to_list(), strict=True)
        ]
        avg = self.length_sum / self.n if kind != "BOOL" and self.n else None
        return StringStatistics(
            unique=max(unique, 1),
            top_values=top_values,
            avg_length=avg,
            invalid_utf8=self.invalid_utf8,
        )


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class _ListLengths:
    min: int = 2**63 - 1
    max: int = 0
    sum: int = 0
    rows: int = 0

    def merge(self, other: _ListLengths) -> None:
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        self.rows += other.rows


class _Feature:
    """Everything kept about one column."""

    def __init__(self, name: str, kind: str | None, is_list: bool, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.kind = kind
        self.is_list = is_list
        self.count = 0
        self.lengths = _ListLengths() if is_list else None
        self.numeric: _Numeric | None = None
        self.values: _Values | None = None
        self._typed(kind)

    def _typed(self, kind: str | None) -> None:
        self.kind = kind
        if kind in _NUMERIC_KINDS and self.numeric is None:
            self.numeric = _Numeric()
        if kind in _STRING_KINDS and self.values is None:
            self.values = _Values(binary=kind == "BYTES", cap=self.cap)

    def _check(self, kind: str | None, is_list: bool) -> None:
        """Reconcile the type seen in a new batch or shard with the one so far."""
        if is_list != self.is_list and kind is not None and self.kind is not None:
            raise DataError(
                f"column {self.name!r} is a list in one batch and not in another; "
                "give every batch the same schema"
            )
        if is_list and self.lengths is None:
            self.is_list, self.lengths = True, _ListLengths()
        if kind is None or kind == self.kind:
            return
        if self.kind is None:
            self._typed(kind)
        elif {kind, self.kind} == {"INT", "FLOAT"}:
            self.kind = "FLOAT"
        else:
            raise DataError(
                f"column {self.name!r} is {self.kind} in one batch and {kind} in another; "
                "give every batch the same schema (cast the column) before computing statistics"
            )

    def update(self, column: pa.ChunkedArray) -> None:
        t = column.type
        is_list = _is_list(t)
        kind = _kind(_item_type(t), self.name)
        self._check(kind, is_list)
        present = len(column) - column.null_count
        self.count += present
        if kind is None or present == 0:
            return
        values = column
        if is_list:
            assert self.lengths is not None
            lengths = pc.drop_null(pc.list_value_length(column))
            self.lengths.merge(
                _ListLengths(
                    min=int(pc.min(lengths).as_py()),
                    max=int(pc.max(lengths).as_py()),
                    sum=int(pc.sum(lengths).as_py()),
                    rows=present,
                )
            )
            while _is_list(values.type):
                values = pc.list_flatten(values)
        if values.null_count:
            values = pc.drop_null(values)
        if isinstance(values, pa.Array):
            values = pa.chunked_array([values])
        if self.numeric is not None and kind in _NUMERIC_KINDS:
            self.numeric.update(_to_float(values, kind), may_be_nonfinite=kind == "FLOAT")
        if self.values is not None and kind in _STRING_KINDS:
            self.values.update(values, kind)

    def merge(self, other: _Feature) -> None:
        self._check(other.kind, other.is_list)
        self.count += other.count
        if self.lengths is not None and other.lengths is not None:
            self.lengths.merge(other.lengths)
        if self.numeric is not None and other.numeric is not None:
            self.numeric.merge(other.numeric)
        if self.values is not None and other.values is not None:
            self.values.merge(other.values)

    def result(self, num_examples: int) -> FeatureStatistics:
        kind = self.kind or "STRING"
        vpr = None
        if self.lengths is not None and self.lengths.rows:
            vpr = ValuesPerRow(
                min=self.lengths.min,
                max=self.lengths.max,
                avg=self.lengths.sum / self.lengths.rows,
            )
        numeric = self.numeric.result() if self.numeric is not None else None
        if self.values is not None:
            string: StringStatistics | None = self.values.result(kind)
        elif self.kind is None:
            string = StringStatistics(unique=0, top_values=[], avg_length=None)
        else:
            string = None
        return FeatureStatistics(
            name=self.name,
            type=kind,
            count=self.count,
            num_missing=num_examples - self.count,
            values_per_row=vpr,
            numeric=numeric,
            string=string,
        )


class StatisticsAccumulator:
    """Statistics of one dataset, built batch by batch and mergeable across shards.

    ``exact_keys_cap`` bounds the distinct values whose counts each string feature keeps exactly
    (see the module docstring); shards to be merged should use the same cap. ``threads`` > 1
    updates the columns of a large batch in parallel.

    >>> acc = StatisticsAccumulator()
    >>> acc.update(pa.table({"x": [1, 2, 3]}))
    >>> other = StatisticsAccumulator()
    >>> other.update(pa.table({"x": [4]}))
    >>> acc.merge(other)
    >>> acc.result("train").feature("x").numeric.mean
    2.5
    """

    def __init__(self, *, exact_keys_cap: int = EXACT_KEYS_CAP, threads: int = 1) -> None:
        if exact_keys_cap < TOP_VALUES_KEPT:
            raise DataError(
                f"exact_keys_cap must be at least {TOP_VALUES_KEPT} (the top values kept), "
                f"not {exact_keys_cap}"
            )
        self.exact_keys_cap = exact_keys_cap
        self.threads = max(1, threads)
        self.num_examples = 0
        self._features: dict[str, _Feature] = {}

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add one batch (or a whole table) of rows."""
        if not isinstance(batch, pa.RecordBatch | pa.Table):
            raise DataError(
                f"statistics need Arrow record batches or tables, not {type(batch).__name__}"
            )
        names = batch.schema.names
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"columns {dupes} appear more than once; rename them first")
        work: list[tuple[_Feature, pa.ChunkedArray]] = []
        for name, column in zip(names, batch.columns, strict=True):
            chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
            feature = self._features.get(name)
            if feature is None:
                t = chunked.type
                kind = _kind(_item_type(t), name)
                feature = _Feature(name, kind, _is_list(t), self.exact_keys_cap)
                self._features[name] = feature
            work.append((feature, chunked))
        if self.threads > 1 and batch.num_rows >= _PARALLEL_ROWS and len(work) > 1:
            # Columns are independent; NumPy and Arrow release the GIL for most of the work.
            with ThreadPoolExecutor(self.threads, thread_name_prefix="kiln-stats") as pool:
                for future in [pool.submit(f.update, c) for f, c in work]:
                    future.result()
        else:
            for feature, chunked in work:
                feature.update(chunked)
        self.num_examples += batch.num_rows

    def merge(self, other: StatisticsAccumulator) -> None:
        """Fold in the statistics of another shard of the same dataset (``other`` is not changed;
        its sketches are copied where this accumulator lacks the feature)."""
        for name, feature in other._features.items():
            mine = self._features.get(name)
            if mine is None:
                mine = _Feature(name, None, feature.is_list, self.exact_keys_cap)
                self._features[name] = mine
            mine.merge(feature)
        self.num_examples += other.num_examples

    def result(self, name: str = "default") -> DatasetStatistics:
        """The statistics so far, as one dataset entry called ``name``."""
        features = list(self._features.values())
        if self.threads > 1 and len(features) > 1:  # quantiles partition arrays: GIL released
            with ThreadPoolExecutor(self.threads, thread_name_prefix="kiln-stats") as pool:
                results = list(pool.map(lambda f: f.result(self.num_examples), features))
        else:
            results = [f.result(self.num_examples) for f in features]
        return DatasetStatistics(name=name, num_examples=self.num_examples, features=results)


def generate_statistics(
    data: pa.Table | Iterable[pa.RecordBatch], *, name: str = "default", threads: int = 1
) -> Statistics:
    """Statistics of a table, or of a stream of record batches read in one pass.

    ``threads`` > 1 computes the columns of a large batch in parallel (one thread by default:
    Kiln does not take every core of a shared machine unless told to).
    """
    acc = StatisticsAccumulator(threads=threads)
    if isinstance(data, pa.Table | pa.RecordBatch):
        acc.update(data)
    else:
        try:
            batches = iter(data)
        except TypeError as e:
            raise DataError(
                f"statistics need an Arrow table or record batches, not {type(data).__name__}"
            ) from e
        for batch in batches:
            acc.update(batch)
    return Statistics([acc.result(name)])


def generate_split_statistics(splits: Mapping[str, pa.Table], *, threads: int = 1) -> Statistics:
    """Statistics of each split (``{"train": table, "eval": table}``), one dataset entry each."""
    return Statistics(
        [
            generate_statistics(table, name=split, threads=threads).dataset()
            for split, table in splits.items()
        ]
    )
