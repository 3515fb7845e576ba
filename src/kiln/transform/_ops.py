"""Transform ops: one small frozen dataclass per op, each an analyzer (``fit``) and a mapper
(``apply``), in the manner of TensorFlow Transform.

The op contract (every built-in follows it; :mod:`kiln.transform._graph` drives them):

* An op's settings are its dataclass fields (JSON-able, validated in ``__post_init__``).
* ``fit(ctx) -> state`` runs the analyzer over the whole working table once and returns the
  learned state: a dict of JSON-able values and float64 numpy arrays.
* ``apply(ctx, state)`` is vectorised (Arrow / numpy / Polars, never a Python loop over rows) and
  either *rewrites* its input column in the working table (``rewrites = True``: impute, clip,
  log1p; later ops see the new values) or *emits* a block of output features.

Missing values: scalers, bucketizers, polynomial and datetime parts keep a null / NaN as NaN (impute
first; :func:`~kiln.transform.auto_transform` does). Categorical ops give a null its own category
(``<missing>``) when the training data had one. NaN counts as missing; ±inf is a
:class:`~kiln.errors.DataError` naming the column and row unless a ``clip`` op bounds it first.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import numpy as np

from kiln._lazy import LazyModule
from kiln.errors import DataError

if TYPE_CHECKING:
    import polars as pl  # imported where used: loading a model for prediction never needs it
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # neither loading a model nor serving it a few rows needs Arrow (85 ms to import)
    pa = LazyModule("pyarrow")
    pc = LazyModule("pyarrow.compute")

__all__ = [
    "MISSING",
    "Block",
    "Op",
    "bag_of_words",
    "bucketize",
    "clip",
    "datetime_parts",
    "feature_cross",
    "hash_bucketize",
    "impute",
    "index_values",
    "label_encode",
    "log1p",
    "max_abs_scale",
    "min_max_scale",
    "multi_hot",
    "ngrams",
    "one_hot",
    "polynomial_expand",
    "quantile_bucketize",
    "robust_scale",
    "stable_hash",
    "standard_scale",
    "struct_fields",
]

Array = np.ndarray[Any, np.dtype[Any]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Column: TypeAlias = "pa.ChunkedArray | FloatArray"
State = dict[str, Any]

MISSING = "\x00"
"""How a null string is held inside a vocabulary (shown as ``<missing>`` in feature names)."""
UNKNOWN_NAME = "<unknown>"
MISSING_NAME = "<missing>"
TOKEN_PATTERN = r"\b\w\w+\b"  # noqa: S105
"""scikit-learn's default ``token_pattern`` (words of two or more word characters)."""
DATETIME_PARTS = (
    "epoch",
    "year",
    "quarter",
    "month",
    "day",
    "dayofweek",
    "dayofyear",
    "hour",
    "minute",
    "second",
)


@dataclass
class Block:
    """Output features of one op: a (rows x k) float64 block ``X`` and, per column, its metadata.
    A one-hot block holds ``hot`` instead of ``X``: per row the index of its 1 (NaN: a row of
    zeros), so a linear model can look its weights up rather than multiply thousands of zeros."""

    X: FloatArray | None
    names: list[str]
    source: list[str]
    categorical: list[bool]
    hot: FloatArray | None = None

    @property
    def width(self) -> int:
        return len(self.names)

    def write(self, out: FloatArray) -> None:
        """Fill ``out`` (a rows x width view of the feature matrix) with this block."""
        if self.hot is None:
            assert self.X is not None
            out[...] = self.X
            return
        out[...] = 0.0
        ok = ~np.isnan(self.hot)
        out[np.nonzero(ok)[0], self.hot[ok].astype(np.intp)] = 1.0


# ------------------------------------------------------------------------------------------------
# reading columns


class Context:
    """The working table while fitting or applying: input columns, rewritten by earlier ops."""

    def __init__(self, table: pa.Table) -> None:
        self.num_rows = table.num_rows
        self.table = table
        # columns taken from the table as ops ask for them (a wide table's other columns are never
        # touched), and the ones earlier ops rewrote
        self.columns: dict[str, Column] = {}

    def raw(self, name: str) -> Column:
        column = self.columns.get(name)
        if column is not None:
            return column
        try:
            column = self.table.column(name)
        except KeyError:
            raise DataError(
                f"column {name!r} is missing from the input; the transform needs it "
                f"(the table has: {', '.join(self.table.column_names) or 'no columns'})"
            ) from None
        self.columns[name] = column
        return column

    def numeric_block(self, names: Sequence[str]) -> Block:
        """Several columns as one (rows x k) float64 block, as :meth:`numeric` gives each: one
        infinity check for them all, and no cast for columns already float64 (what serving a
        single row of many numeric features spends its time on)."""
        out = np.empty((self.num_rows, len(names)), order="F")
        for j, name in enumerate(names):
            col = self.raw(name)
            if isinstance(col, pa.ChunkedArray) and pa.types.is_float64(col.type):
                out[:, j] = col.to_numpy()  # nulls come out as NaN
            else:
                out[:, j] = col if isinstance(col, np.ndarray) else _to_float(col, name)
        bad = np.isinf(out)
        if bad.any():
            row, j = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"column {names[j]!r}, row {row}: value {out[row, j]} is infinite; "
                "remove it or add a clip op for this column before the others"
            )
        return Block(out, list(names), list(names), [False] * len(names))

    def numeric(self, name: str, *, allow_inf: bool = False) -> FloatArray:
        """A column as float64 (null -> NaN), checked: strings that do not parse and ±inf raise."""
        col = self.raw(name)
        values = col if isinstance(col, np.ndarray) else _to_float(col, name)
        if not allow_inf:
            bad = np.isinf(values)
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(
                    f"column {name!r}, row {row}: value {values[row]} is infinite; "
                    "remove it or add a clip op for this column before the others"
                )
        return values

    def strings(self, name: str, *, fill: bool = True) -> pa.ChunkedArray:
        """A column as strings with nulls (and NaN) replaced by :data:`MISSING` (left null with
        ``fill=False``, which spares a copy of every string where only codes are wanted)."""
        col = self.raw(name)
        if isinstance(col, np.ndarray):
            arr = pa.chunked_array([pa.array(col, from_pandas=True)])
        else:
            arr = col
        return _to_strings(arr, name, fill=fill)

    def codes(self, name: str, vocab: list[str]) -> FloatArray:
        """Each value's index in ``vocab`` (float64), missing values at :data:`MISSING`'s index,
        NaN where the value is not in ``vocab``. A dictionary-encoded column (Parquet, Polars
        categoricals, DuckDB enums) is looked up once per dictionary entry, not once per row."""
        col = self.raw(name)
        if (
            isinstance(col, pa.ChunkedArray)
            and pa.types.is_dictionary(col.type)
            and (
                pa.types.is_string(col.type.value_type)
                or pa.types.is_large_string(col.type.value_type)
            )
        ):
            missing = float(vocab.index(MISSING)) if MISSING in vocab else np.nan
            parts = []
            for chunk in col.chunks:
                # one gather per chunk: a null index points one past the dictionary, at MISSING
                per_entry = np.append(_codes(chunk.dictionary, vocab), missing)
                indices = chunk.indices
                if indices.null_count:
                    indices = pc.fill_null(indices, len(chunk.dictionary))
                parts.append(per_entry[indices.to_numpy(zero_copy_only=False)])
            return np.concatenate(parts) if parts else np.zeros(0)
        return _codes(self.strings(name, fill=False), vocab)


def _to_float(col: pa.ChunkedArray, name: str) -> FloatArray:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_null(t):
        return np.full(len(col), np.nan)
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
    ):
        out = col.cast(pa.float64())
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        out = col.cast(pa.timestamp("us")).cast(pa.int64()).cast(pa.float64())
        return np.asarray(out.to_numpy(), dtype=np.float64) / 1e6
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        try:  # numbers sent as text (CSV, JSON) are accepted when every value parses
            out = col.cast(pa.float64())
        except pa.ArrowInvalid:
            row = _first_unparsable(col)
            value = col[row].as_py() if row is not None else None
            raise DataError(
                f"column {name!r}, row {row}: expected a number, found the string {value!r}; "
                "fix the data or use a categorical op (one_hot, label_encode) for this column"
            ) from None
    else:
        raise DataError(
            f"column {name!r}: expected numbers, found Arrow type {t}; "
            "cast it to a number or use a categorical op for this column"
        )
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64)


def _first_unparsable(col: pa.ChunkedArray) -> int | None:
    import polars as pl

    frame = pl.from_arrow(pa.table({"v": col}))
    assert isinstance(frame, pl.DataFrame)
    bad = frame.select(
        (pl.col("v").is_not_null() & pl.col("v").cast(pl.Float64, strict=False).is_null())
        .arg_true()
        .first()
    ).item()
    return None if bad is None else int(bad)


def _to_strings(col: pa.ChunkedArray, name: str, *, fill: bool = True) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_floating(t):
        col = pc.if_else(pc.is_nan(col), pa.scalar(None, t), col)
    if pa.types.is_null(t):
        col = pa.chunked_array([pa.nulls(len(col), pa.string())])
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or _is_list(t):
            raise DataError(
                f"column {name!r}: a categorical op needs strings, numbers or bools, "
                f"found Arrow type {t}"
            )
        col = col.cast(pa.string())
    col = col.cast(pa.string())
    return pc.fill_null(col, MISSING) if fill else col


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _finite(values: FloatArray) -> FloatArray:
    return values[np.isfinite(values)]


def _label(value: str) -> str:
    return MISSING_NAME if value == MISSING else value


# ------------------------------------------------------------------------------------------------
# stable hashing

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def stable_hash(values: pa.Array | pa.ChunkedArray) -> Array:
    """64-bit FNV-1a of each string's UTF-8 bytes (uint64), the same on every platform and run.

    Computed once per distinct value, vectorised over the values (one numpy step per byte
    position), then spread back to the rows.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = pc.dictionary_encode(arr.cast(pa.large_string()))
    dictionary = encoded.dictionary
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    buffers = dictionary.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[
        dictionary.offset : dictionary.offset + len(dictionary) + 1
    ]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = np.full(len(dictionary), _FNV_OFFSET, dtype=np.uint64)
    for j in range(int(lengths.max()) if len(lengths) else 0):
        live = lengths > j
        byte = data[starts[live] + j].astype(np.uint64)
        h[live] = (h[live] ^ byte) * _FNV_PRIME
    return h[indices]


# ------------------------------------------------------------------------------------------------
# the op contract


@dataclass(frozen=True)
class Op(abc.ABC):
    """Base of every op; subclasses set ``kind`` and implement ``fit`` and ``apply``."""

    kind: ClassVar[str]
    rewrites: ClassVar[bool] = False

    def inputs(self) -> list[str]:
        column = getattr(self, "column", None)
        if column is not None:
            return [column]
        return list(getattr(self, "columns", []))

    def fit(self, ctx: Context) -> State:
        return {}

    @abc.abstractmethod
    def apply(self, ctx: Context, state: State) -> Block | None:
        """The op's output block for ``ctx`` (None when it only rewrites its column)."""


OPS: dict[str, type[Op]] = {}


def _register(cls: type[Op]) -> type[Op]:
    OPS[cls.kind] = cls
    return cls


def _column_stats(values: FloatArray) -> dict[str, float]:
    """Mean, std dev, min and max of the finite values, as :mod:`kiln.data`'s statistics define
    them (NaN and ±inf left out, population std dev). Computed here in one numpy pass rather than
    through ``generate_statistics``, which also builds the quantiles and histograms that these
    analyzers do not need (two thirds of a fit's time)."""
    v = values[np.isfinite(values)] if not np.isfinite(values).all() else values
    if not len(v):
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    mean = float(v.mean())
    return {
        "mean": mean,
        "std": float(np.sqrt(np.mean(np.square(v - mean)))),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def single_block(values: FloatArray, name: str) -> Block:
    """One numeric feature named after its column."""
    return Block(values.reshape(-1, 1), [name], [name], [False])


# ------------------------------------------------------------------------------------------------
# scaling


@_register
@dataclass(frozen=True)
class StandardScale(Op):
    """``(x - mean) / std`` (population std; a constant column is only centred), as
    StandardScaler."""

    column: str
    kind: ClassVar[str] = "standard_scale"

    def fit(self, ctx: Context) -> State:
        s = _column_stats(ctx.numeric(self.column))
        return {"mean": s["mean"], "scale": s["std"] if s["std"] > 0 else 1.0}

    def apply(self, ctx: Context, state: State) -> Block:
        x = ctx.numeric(self.column)
        return single_block((x - _f(state["mean"])) / _f(state["scale"]), self.column)


@_register
@dataclass(frozen=True)
class MinMaxScale(Op):
    """``(x - min) / (max - min)`` into [0, 1] (a constant column maps to 0), as MinMaxScaler."""

    column: str
    kind: ClassVar[str] = "min_max_scale"

    def fit(self, ctx: Context) -> State:
        s = _column_stats(ctx.numeric(self.column))
        span = s["max"] - s["min"]
        return {"min": s["min"], "scale": span if span > 0 else 1.0}

    def apply(self, ctx: Context, state: State) -> Block:
        x = ctx.numeric(self.column)
        return single_block((x - _f(state["min"])) / _f(state["scale"]), self.column)


@_register
@dataclass(frozen=True)
class MaxAbsScale(Op):
    """``x / max(|x|)`` into [-1, 1], as MaxAbsScaler."""

    column: str
    kind: ClassVar[str] = "max_abs_scale"

    def fit(self, ctx: Context) -> State:
        s = _column_stats(ctx.numeric(self.column))
        m = max(abs(s["min"]), abs(s["max"]))
        return {"scale": m if m > 0 else 1.0}

    def apply(self, ctx: Context, state: State) -> Block:
        return single_block(ctx.numeric(self.column) / _f(state["scale"]), self.column)


@_register
@dataclass(frozen=True)
class RobustScale(Op):
    """``(x - median) / (q75 - q25)``, quantiles interpolated linearly, as RobustScaler."""

    column: str
    quantile_range: tuple[float, float] = (25.0, 75.0)
    kind: ClassVar[str] = "robust_scale"

    def fit(self, ctx: Context) -> State:
        v = _finite(ctx.numeric(self.column))
        if not len(v):
            return {"center": math.nan, "scale": 1.0}
        lo, med, hi = np.percentile(v, [self.quantile_range[0], 50.0, self.quantile_range[1]])
        iqr = float(hi - lo)
        return {"center": float(med), "scale": iqr if iqr > 0 else 1.0}

    def apply(self, ctx: Context, state: State) -> Block:
        x = ctx.numeric(self.column)
        return single_block((x - _f(state["center"])) / _f(state["scale"]), self.column)


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


# ------------------------------------------------------------------------------------------------
# rewriting ops: impute, clip, log1p


@_register
@dataclass(frozen=True)
class Impute(Op):
    """Replace missing values (null, NaN) by the column's mean / median / most frequent value, or
    ``value``. Numbers: all four strategies; strings and bools: most_frequent and constant."""

    column: str
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean"
    value: float | str | None = None
    kind: ClassVar[str] = "impute"
    rewrites: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.strategy not in ("mean", "median", "most_frequent", "constant"):
            raise DataError(
                f"impute({self.column!r}): unknown strategy {self.strategy!r}; "
                "use mean, median, most_frequent or constant"
            )
        if self.strategy == "constant" and self.value is None:
            raise DataError(f"impute({self.column!r}, strategy='constant') needs a value")

    def _is_numeric(self, ctx: Context) -> bool:
        col = ctx.raw(self.column)
        if isinstance(col, np.ndarray):
            return True
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))

    def fit(self, ctx: Context) -> State:
        if self.strategy == "constant":
            return {"fill": self.value}
        if self._is_numeric(ctx):
            x = ctx.numeric(self.column)
            if self.strategy == "mean":
                fill: Any = _column_stats(x)["mean"]
            elif self.strategy == "median":
                v = _finite(x)
                fill = float(np.median(v)) if len(v) else math.nan
            else:
                v = _finite(x)
                if len(v):
                    uniq, counts = np.unique(v, return_counts=True)
                    fill = float(uniq[int(np.argmax(counts))])  # ties: the smallest, as sklearn
                else:
                    fill = math.nan
            return {"fill": None if math.isnan(fill) else fill}
        if self.strategy in ("mean", "median"):
            raise DataError(
                f"impute({self.column!r}, strategy={self.strategy!r}): the column is not "
                "numeric; use strategy='most_frequent' or 'constant'"
            )
        vocab = _vocabulary(ctx.strings(self.column), top_k=None, threshold=0, keep_missing=False)
        return {"fill": vocab[0] if vocab else None}

    def apply(self, ctx: Context, state: State) -> None:
        fill = state["fill"]
        if self._is_numeric(ctx) and not isinstance(fill, str):
            x = ctx.numeric(self.column)
            ctx.columns[self.column] = np.where(np.isnan(x), _f(fill), x)
        else:
            s = ctx.strings(self.column)
            if fill is not None:
                s = pc.if_else(pc.equal(s, MISSING), pa.scalar(str(fill)), s)
            ctx.columns[self.column] = s


@_register
@dataclass(frozen=True)
class Clip(Op):
    """Bound a numeric column to ``[min, max]`` (either may be None); bounds ±inf as well."""

    column: str
    min: float | None = None
    max: float | None = None
    kind: ClassVar[str] = "clip"
    rewrites: ClassVar[bool] = True

    def apply(self, ctx: Context, state: State) -> None:
        x = ctx.numeric(self.column, allow_inf=True)
        lo = -np.inf if self.min is None else self.min
        hi = np.inf if self.max is None else self.max
        ctx.columns[self.column] = np.clip(x, lo, hi)


@_register
@dataclass(frozen=True)
class Log1p(Op):
    """``log(1 + x)``; a value <= -1 is a DataError naming its row."""

    column: str
    kind: ClassVar[str] = "log1p"
    rewrites: ClassVar[bool] = True

    def apply(self, ctx: Context, state: State) -> None:
        x = ctx.numeric(self.column)
        bad = x <= -1
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"column {self.column!r}, row {row}: log1p needs values > -1, found {x[row]}; "
                "clip the column first"
            )
        ctx.columns[self.column] = np.log1p(x)


# ------------------------------------------------------------------------------------------------
# bucketizing


def _codes_block(
    codes: FloatArray, k: int, name: str, source: str, one_hot: bool, labels: Sequence[str]
) -> Block:
    if not one_hot:
        return Block(codes.reshape(-1, 1), [name], [source], [True])
    names = [f"{name}={label}" for label in labels]
    return Block(None, names, [source] * k, [False] * k, hot=codes)


@_register
@dataclass(frozen=True)
class Bucketize(Op):
    """Bucket index by fixed ascending ``edges``: ``x < e0`` is 0, ``e0 <= x < e1`` is 1, ...
    (``len(edges) + 1`` buckets); NaN stays NaN. ``one_hot`` emits one 0/1 column per bucket."""

    column: str
    edges: tuple[float, ...] = ()
    one_hot: bool = False
    kind: ClassVar[str] = "bucketize"

    def __post_init__(self) -> None:
        if not self.edges or list(self.edges) != sorted(self.edges):
            raise DataError(f"bucketize({self.column!r}): edges must be a non-empty ascending list")

    def fit(self, ctx: Context) -> State:
        return {"edges": np.asarray(self.edges, dtype=np.float64)}

    def apply(self, ctx: Context, state: State) -> Block:
        return _bucket_block(ctx.numeric(self.column), state["edges"], self.column, self.one_hot)


def _bucket_block(x: FloatArray, edges: FloatArray, column: str, one_hot: bool) -> Block:
    codes = np.searchsorted(edges, x, side="right").astype(np.float64)
    codes[np.isnan(x)] = np.nan
    k = len(edges) + 1
    return _codes_block(codes, k, f"{column}_bucket", column, one_hot, [str(i) for i in range(k)])


@_register
@dataclass(frozen=True)
class QuantileBucketize(Op):
    """Equal-mass buckets: inner edges are the ``i / num_buckets`` quantiles of the finite values
    (linear interpolation), duplicate edges dropped, as ``KBinsDiscretizer(strategy='quantile',
    quantile_method='linear')``."""

    column: str
    num_buckets: int = 4
    one_hot: bool = False
    kind: ClassVar[str] = "quantile_bucketize"

    def __post_init__(self) -> None:
        if self.num_buckets < 2:
            raise DataError(f"quantile_bucketize({self.column!r}): num_buckets must be >= 2")

    def fit(self, ctx: Context) -> State:
        v = _finite(ctx.numeric(self.column))
        if not len(v):
            return {"edges": np.zeros(0)}
        qs = np.linspace(0.0, 1.0, self.num_buckets + 1)
        full = np.quantile(v, qs)
        keep = np.concatenate([[True], np.diff(full) > 1e-8])  # as KBinsDiscretizer
        inner = full[keep][1:-1]
        return {"edges": np.asarray(inner, dtype=np.float64)}

    def apply(self, ctx: Context, state: State) -> Block:
        return _bucket_block(ctx.numeric(self.column), state["edges"], self.column, self.one_hot)


@_register
@dataclass(frozen=True)
class HashBucketize(Op):
    """``stable_hash(str(value)) % num_buckets``; a missing value hashes as ``<missing>``'s
    internal marker, so it has a bucket of its own like any value."""

    column: str
    num_buckets: int = 1000
    one_hot: bool = False
    kind: ClassVar[str] = "hash_bucketize"

    def apply(self, ctx: Context, state: State) -> Block:
        h = stable_hash(ctx.strings(self.column))
        codes = (h % np.uint64(self.num_buckets)).astype(np.float64)
        labels = [str(i) for i in range(self.num_buckets)]
        return _codes_block(
            codes, self.num_buckets, f"{self.column}_hash", self.column, self.one_hot, labels
        )


@_register
@dataclass(frozen=True)
class FeatureCross(Op):
    """Hashed cross of categorical columns: ``stable_hash("a\\x1fb") % num_buckets``."""

    columns: tuple[str, ...] = ()
    num_buckets: int = 1000
    one_hot: bool = False
    kind: ClassVar[str] = "feature_cross"

    def __post_init__(self) -> None:
        if len(self.columns) < 2:
            raise DataError("feature_cross needs at least two columns")

    def apply(self, ctx: Context, state: State) -> Block:
        parts = [ctx.strings(c) for c in self.columns]
        joined = pc.binary_join_element_wise(*parts, "\x1f")
        codes = (stable_hash(joined) % np.uint64(self.num_buckets)).astype(np.float64)
        name = "_x_".join(self.columns)
        labels = [str(i) for i in range(self.num_buckets)]
        block = _codes_block(codes, self.num_buckets, name, self.columns[0], self.one_hot, labels)
        block.source = [name] * len(block.names)
        return block


# ------------------------------------------------------------------------------------------------
# categorical encodings


def _vocabulary(
    values: pa.ChunkedArray | pa.Array, *, top_k: int | None, threshold: int, keep_missing: bool
) -> list[str]:
    """Distinct values by count (descending; ties by value), at least ``threshold`` each."""
    counts = pc.value_counts(values)
    vals = counts.field("values").to_pylist()
    ns = counts.field("counts").to_pylist()
    pairs = sorted(
        (
            (n, v)
            for v, n in zip(vals, ns, strict=True)
            if n >= threshold and v is not None and (keep_missing or v != MISSING)
        ),
        key=lambda p: (-p[0], p[1]),
    )
    if top_k is not None:
        pairs = pairs[:top_k]
    return [v for _, v in pairs]


def _codes(values: pa.ChunkedArray | pa.Array, vocab: list[str]) -> FloatArray:
    """Index of each value in ``vocab`` (float64), NaN where it is not there; a null value is
    :data:`MISSING` (its index when ``vocab`` has it)."""
    idx = pc.index_in(values, value_set=pa.array(vocab, pa.string()))
    if values.null_count and MISSING in vocab:
        idx = pc.if_else(values.is_null(), pa.scalar(vocab.index(MISSING), idx.type), idx)
    if not idx.null_count:
        return np.asarray(idx.to_numpy(), dtype=np.float64)
    # not found: NaN (a -1 then a masked write: 3x faster than Arrow's cast with nulls)
    codes = np.asarray(pc.fill_null(idx, -1).to_numpy(), dtype=np.float64)
    codes[codes < 0] = np.nan
    return codes


@dataclass(frozen=True)
class _Categorical(Op):
    column: str
    top_k: int | None = None
    frequency_threshold: int = 0
    unknown: Literal["ignore", "bucket"] = "ignore"

    def __post_init__(self) -> None:
        if self.unknown not in ("ignore", "bucket"):
            raise DataError(
                f"{self.kind}({self.column!r}): unknown must be 'ignore' or 'bucket', "
                f"not {self.unknown!r}"
            )

    def fit(self, ctx: Context) -> State:
        vocab = _vocabulary(
            ctx.strings(self.column),
            top_k=self.top_k,
            threshold=self.frequency_threshold,
            keep_missing=True,
        )
        return {"vocabulary": vocab}


@_register
@dataclass(frozen=True)
class OneHot(_Categorical):
    """One 0/1 column per vocabulary value (most frequent first; ``top_k`` and
    ``frequency_threshold`` trim it). A missing value is a category of its own when training had
    one. Unseen or trimmed values: all zeros (``unknown='ignore'``, weight 0 in a linear model) or
    a ``<unknown>`` column (``'bucket'``)."""

    kind: ClassVar[str] = "one_hot"

    def apply(self, ctx: Context, state: State) -> Block:
        vocab: list[str] = state["vocabulary"]
        codes = ctx.codes(self.column, vocab)
        labels = [_label(v) for v in vocab]
        if self.unknown == "bucket":
            codes = np.where(np.isnan(codes), float(len(vocab)), codes)
            labels.append(UNKNOWN_NAME)
        return _codes_block(codes, len(labels), self.column, self.column, True, labels)


@_register
@dataclass(frozen=True)
class LabelEncode(_Categorical):
    """The value's index in the vocabulary (a categorical code for trees). Unseen or trimmed
    values: NaN (``unknown='ignore'``) or the code ``len(vocabulary)`` (``'bucket'``)."""

    kind: ClassVar[str] = "label_encode"

    def apply(self, ctx: Context, state: State) -> Block:
        vocab: list[str] = state["vocabulary"]
        codes = ctx.codes(self.column, vocab)
        if self.unknown == "bucket":
            codes = np.where(np.isnan(codes), float(len(vocab)), codes)
        return Block(codes.reshape(-1, 1), [self.column], [self.column], [True])


@_register
@dataclass(frozen=True)
class MultiHot(_Categorical):
    """For a list<string> column: one 0/1 column per vocabulary value present in the row's list
    (null lists and null items contribute nothing; unseen items: ignored or ``<unknown>``)."""

    kind: ClassVar[str] = "multi_hot"

    def _items(self, ctx: Context) -> tuple[pa.Array, Array]:
        col = ctx.raw(self.column)
        if not isinstance(col, np.ndarray) and pa.types.is_null(col.type):  # JSON null
            return pa.array([], pa.string()), np.zeros(0, dtype=np.int64)
        if isinstance(col, np.ndarray) or not _is_list(col.type):
            raise DataError(f"column {self.column!r}: multi_hot needs a list<string> column")
        arr = col.combine_chunks()
        items = pc.list_flatten(arr)
        parents = np.asarray(pc.list_parent_indices(arr).to_numpy(), dtype=np.int64)
        valid = pc.is_valid(items)
        items = pc.filter(items, valid)
        parents = parents[np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)]
        return items.cast(pa.string()), parents

    def fit(self, ctx: Context) -> State:
        items, _ = self._items(ctx)
        vocab = _vocabulary(
            items, top_k=self.top_k, threshold=self.frequency_threshold, keep_missing=False
        )
        return {"vocabulary": vocab}

    def apply(self, ctx: Context, state: State) -> Block:
        vocab: list[str] = state["vocabulary"]
        items, parents = self._items(ctx)
        codes = _codes(items, vocab)
        k = len(vocab) + (self.unknown == "bucket")
        if self.unknown == "bucket":
            codes = np.where(np.isnan(codes), float(len(vocab)), codes)
        X = np.zeros((ctx.num_rows, k))
        ok = ~np.isnan(codes)
        X[parents[ok], codes[ok].astype(np.int64)] = 1.0
        labels = list(vocab) + ([UNKNOWN_NAME] if self.unknown == "bucket" else [])
        names = [f"{self.column}={v}" for v in labels]
        return Block(X, names, [self.column] * k, [False] * k)


# ------------------------------------------------------------------------------------------------
# numeric expansions


@_register
@dataclass(frozen=True)
class PolynomialExpand(Op):
    """All monomials of degree 1..``degree`` in the columns, in PolynomialFeatures' order
    (``include_bias=False``); ``interaction_only`` keeps products of distinct columns."""

    columns: tuple[str, ...] = ()
    degree: int = 2
    interaction_only: bool = False
    kind: ClassVar[str] = "polynomial_expand"

    def apply(self, ctx: Context, state: State) -> Block:
        xs = [ctx.numeric(c) for c in self.columns]
        combos = (
            itertools.combinations
            if self.interaction_only
            else (itertools.combinations_with_replacement)
        )
        out: list[FloatArray] = []
        names: list[str] = []
        sources: list[str] = []
        for d in range(1, self.degree + 1):
            for combo in combos(range(len(xs)), d):
                v = np.ones(ctx.num_rows)
                for i in combo:
                    v = v * xs[i]
                out.append(v)
                sources.append("*".join(self.columns[i] for i in sorted(set(combo))))
                powers = [(i, combo.count(i)) for i in sorted(set(combo))]
                names.append(
                    "*".join(
                        self.columns[i] if p == 1 else f"{self.columns[i]}^{p}" for i, p in powers
                    )
                )
        X = np.column_stack(out) if out else np.zeros((ctx.num_rows, 0))
        return Block(X, names, sources, [False] * len(names))


@_register
@dataclass(frozen=True)
class DatetimeParts(Op):
    """Calendar parts of a timestamp or date column (``dayofweek``: Monday = 0; ``epoch``: Unix
    seconds); a null stays NaN. ``standardize`` mean-imputes and z-scores each part, as BigQuery
    ML's automatic preprocessing does for linear models."""

    column: str
    parts: tuple[str, ...] = ("year", "month", "day", "dayofweek", "hour")
    standardize: bool = False
    kind: ClassVar[str] = "datetime_parts"

    def __post_init__(self) -> None:
        bad = [p for p in self.parts if p not in DATETIME_PARTS]
        if bad:
            raise DataError(
                f"datetime_parts({self.column!r}): unknown parts {bad}; "
                f"known: {', '.join(DATETIME_PARTS)}"
            )

    def _raw(self, ctx: Context) -> FloatArray:
        col = ctx.raw(self.column)
        t = None if isinstance(col, np.ndarray) else col.type
        if t is not None and not isinstance(col, np.ndarray):
            if pa.types.is_null(t):  # a serving row whose value is JSON null
                col, t = col.cast(pa.timestamp("us")), pa.timestamp("us")
            elif pa.types.is_string(t) or pa.types.is_large_string(t):  # ISO 8601 text
                try:
                    col, t = col.cast(pa.timestamp("us")), pa.timestamp("us")
                except pa.ArrowInvalid as e:
                    raise DataError(
                        f"column {self.column!r}: datetime_parts needs timestamps; "
                        f"text that is not ISO 8601 ({e})"
                    ) from e
        if t is None or not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise DataError(
                f"column {self.column!r}: datetime_parts needs a timestamp or date column, "
                f"found {t if t is not None else 'numbers'}"
            )
        assert isinstance(col, pa.ChunkedArray)
        ts = col.cast(pa.timestamp("us", tz=getattr(t, "tz", None)))
        out: list[FloatArray] = []
        for p in self.parts:
            if p == "epoch":
                r = ts.cast(pa.int64()).cast(pa.float64())
                out.append(np.asarray(r.to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6)
                continue
            fn = {
                "year": pc.year,
                "quarter": pc.quarter,
                "month": pc.month,
                "day": pc.day,
                "dayofweek": pc.day_of_week,
                "dayofyear": pc.day_of_year,
                "hour": pc.hour,
                "minute": pc.minute,
                "second": pc.second,
            }[p]
            r = fn(ts).cast(pa.float64())
            out.append(np.asarray(r.to_numpy(zero_copy_only=False), dtype=np.float64))
        return np.column_stack(out) if out else np.zeros((ctx.num_rows, 0))

    def fit(self, ctx: Context) -> State:
        if not self.standardize:
            return {}
        X = self._raw(ctx)
        means = np.array([_column_stats(X[:, i])["mean"] for i, p in enumerate(self.parts)])
        means = np.nan_to_num(means)
        filled = np.where(np.isnan(X), means, X)
        stds = filled.std(axis=0)
        return {"mean": means, "scale": np.where(stds > 0, stds, 1.0)}

    def apply(self, ctx: Context, state: State) -> Block:
        X = self._raw(ctx)
        if self.standardize:
            X = (np.where(np.isnan(X), state["mean"], X) - state["mean"]) / state["scale"]
        names = [f"{self.column}.{p}" for p in self.parts]
        return Block(X, names, [self.column] * len(names), [False] * len(names))


@_register
@dataclass(frozen=True)
class BagOfWords(Op):
    """Token or n-gram counts (or tf-idf) of a text column, as scikit-learn's CountVectorizer /
    TfidfVectorizer with their defaults: lowercased, tokens of 2+ word characters, n-grams joined
    by a space, ``top_k`` terms by corpus count, output columns in alphabetical term order.
    ``tfidf``: ``count * (ln((1 + n) / (1 + df)) + 1)``, each row scaled to unit L2 norm.
    A null text has no terms."""

    column: str
    ngram_range: tuple[int, int] = (1, 1)
    top_k: int | None = None
    tfidf: bool = False
    kind: ClassVar[str] = "bag_of_words"

    def __post_init__(self) -> None:
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise DataError(f"bag_of_words({self.column!r}): ngram_range must be 1 <= lo <= hi")

    def _terms(self, ctx: Context) -> pl.DataFrame:
        import polars as pl

        col = ctx.raw(self.column)
        if not isinstance(col, np.ndarray) and pa.types.is_null(col.type):
            col = col.cast(pa.string())
        if isinstance(col, np.ndarray) or not (
            pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        ):
            raise DataError(f"column {self.column!r}: bag_of_words needs a string column")
        text = pl.Series("t", col.combine_chunks()).str.to_lowercase()
        tokens = (
            pl.DataFrame(
                {"row": np.arange(ctx.num_rows), "tok": text.str.extract_all(TOKEN_PATTERN)}
            )
            .explode("tok")
            .drop_nulls("tok")
        )
        lo, hi = self.ngram_range
        frames = []
        for n in range(lo, hi + 1):
            term = pl.concat_str(
                [pl.col("tok").shift(-k).over("row") for k in range(n)], separator=" "
            )
            frames.append(tokens.select("row", term.alias("term")).drop_nulls("term"))
        return pl.concat(frames).group_by("row", "term").len("count")

    def fit(self, ctx: Context) -> State:
        import polars as pl

        counts = self._terms(ctx)
        totals = counts.group_by("term").agg(
            pl.col("count").sum().alias("total"), pl.len().alias("df")
        )
        totals = totals.sort(["total", "term"], descending=[True, False])
        if self.top_k is not None:
            totals = totals.head(self.top_k)
        totals = totals.sort("term")
        n = ctx.num_rows
        df = totals["df"].to_numpy().astype(np.float64)
        return {
            "vocabulary": totals["term"].to_list(),
            "idf": np.log((1.0 + n) / (1.0 + df)) + 1.0,
        }

    def apply(self, ctx: Context, state: State) -> Block:
        import polars as pl

        vocab: list[str] = state["vocabulary"]
        lookup = pl.DataFrame(
            {"term": vocab, "idx": np.arange(len(vocab), dtype=np.int64)},
            schema={"term": pl.String, "idx": pl.Int64},
        )
        hits = self._terms(ctx).join(lookup, on="term", how="inner")
        X = np.zeros((ctx.num_rows, len(vocab)))
        X[hits["row"].to_numpy(), hits["idx"].to_numpy()] = hits["count"].to_numpy()
        if self.tfidf:
            X *= np.asarray(state["idf"], dtype=np.float64)
            norms = np.sqrt((X * X).sum(axis=1, keepdims=True))
            X = np.divide(X, norms, out=X, where=norms > 0)
        names = [f"{self.column}={t}" for t in vocab]
        return Block(X, names, [self.column] * len(vocab), [False] * len(vocab))


# ------------------------------------------------------------------------------------------------
# BigQuery ML's encoded types (what a kiln sql TRANSFORM outputs)


def _is_index_values(t: pa.DataType) -> bool:
    """BigQuery's ``ARRAY<STRUCT<index INT64, value FLOAT64>>`` (ML.ONE_HOT_ENCODER's output)."""
    if not _is_list(t) or not pa.types.is_struct(t.value_type):
        return False
    names = {t.value_type.field(i).name for i in range(t.value_type.num_fields)}
    return names == {"index", "value"}


@_register
@dataclass(frozen=True)
class IndexValues(Op):
    """For an ``ARRAY<STRUCT<index, value>>`` column (ML.ONE_HOT_ENCODER, ML.MULTI_HOT_ENCODER,
    ML.BAG_OF_WORDS, ML.TF_IDF): one dense feature per index from 0 to the largest index seen in
    training, holding the row's value there (0 where absent, summed where repeated). A null array
    is all zeros; indices past the fitted width are ignored."""

    column: str
    kind: ClassVar[str] = "index_values"

    def _pairs(self, ctx: Context) -> tuple[Array, Array, FloatArray]:
        col = ctx.raw(self.column)
        if not isinstance(col, np.ndarray) and pa.types.is_null(col.type):  # JSON null
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        if isinstance(col, np.ndarray) or not _is_index_values(col.type):
            raise DataError(
                f"column {self.column!r}: index_values needs ARRAY<STRUCT<index INT64, "
                f"value FLOAT64>>, found {getattr(col, 'type', 'numbers')}"
            )
        arr = col.combine_chunks()
        items = pc.list_flatten(arr)
        rows = np.asarray(pc.list_parent_indices(arr).to_numpy(), dtype=np.int64)
        index = pc.struct_field(items, "index").cast(pa.float64())
        value = pc.struct_field(items, "value").cast(pa.float64())
        idx = np.asarray(index.to_numpy(zero_copy_only=False), dtype=np.float64)
        val = np.asarray(value.to_numpy(zero_copy_only=False), dtype=np.float64)
        ok = ~np.isnan(idx) & (idx >= 0)
        return rows[ok], idx[ok].astype(np.int64), np.nan_to_num(val[ok])

    def fit(self, ctx: Context) -> State:
        _, idx, _ = self._pairs(ctx)
        return {"width": int(idx.max()) + 1 if len(idx) else 0}

    def apply(self, ctx: Context, state: State) -> Block:
        width = int(state["width"])
        rows, idx, val = self._pairs(ctx)
        keep = idx < width
        X = np.zeros((ctx.num_rows, width))
        np.add.at(X, (rows[keep], idx[keep]), val[keep])
        names = [f"{self.column}[{i}]" for i in range(width)]
        return Block(X, names, [self.column] * width, [False] * width)


@_register
@dataclass(frozen=True)
class StructFields(Op):
    """For a STRUCT column (ML.FEATURE_CROSS, ML.POLYNOMIAL_EXPAND): each field is a feature,
    named ``column.field``. Numbers: as they are, or (``scaled``) mean-imputed and z-scored
    (population std dev, as standard_scale); strings and bools: one-hot over the ``top_k`` most
    frequent values (``scaled``) or a categorical code (missing is a category of its own;
    unseen: all zeros / NaN)."""

    column: str
    scaled: bool = True
    top_k: int | None = None
    kind: ClassVar[str] = "struct_fields"

    def _fields(self, ctx: Context, state: State | None = None) -> Context:
        col = ctx.raw(self.column)
        if state is not None and not isinstance(col, np.ndarray) and pa.types.is_null(col.type):
            return Context(  # a serving row whose value is JSON null: every field missing
                pa.table(
                    {
                        f["name"]: pa.nulls(
                            ctx.num_rows, pa.string() if "vocabulary" in f else pa.float64()
                        )
                        for f in state["fields"]
                    }
                )
            )
        if isinstance(col, np.ndarray) or not pa.types.is_struct(col.type):
            raise DataError(f"column {self.column!r}: struct_fields needs a STRUCT column")
        arr = col.combine_chunks()
        return Context(
            pa.table(
                {
                    arr.type.field(i).name: pc.struct_field(arr, [i])
                    for i in range(arr.type.num_fields)
                }
            )
        )

    def fit(self, ctx: Context) -> State:
        sub = self._fields(ctx)
        fields: list[dict[str, Any]] = []
        for field in sub.table.schema:
            t = field.type
            if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
                vocab = _vocabulary(
                    sub.strings(field.name), top_k=self.top_k, threshold=0, keep_missing=True
                )
                fields.append({"name": field.name, "vocabulary": vocab})
            elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
                s = _column_stats(sub.numeric(field.name))
                mean = 0.0 if math.isnan(s["mean"]) else s["mean"]
                scale = s["std"] if s["std"] > 0 else 1.0
                fields.append({"name": field.name, "mean": mean, "scale": scale})
            else:
                raise DataError(
                    f"column {self.column!r}, field {field.name!r}: struct_fields takes number, "
                    f"string and bool fields, not {t}"
                )
        return {"fields": fields}

    def apply(self, ctx: Context, state: State) -> Block:
        sub = self._fields(ctx, state)
        cols: list[FloatArray] = []
        names: list[str] = []
        categorical: list[bool] = []
        for f in state["fields"]:
            name = f"{self.column}.{f['name']}"
            if "vocabulary" in f:
                vocab: list[str] = f["vocabulary"]
                codes = sub.codes(f["name"], vocab)
                if self.scaled:
                    for k, v in enumerate(vocab):
                        cols.append((codes == k).astype(np.float64))
                        names.append(f"{name}={_label(v)}")
                        categorical.append(False)
                else:
                    cols.append(codes)
                    names.append(name)
                    categorical.append(True)
            else:
                x = sub.numeric(f["name"])
                if self.scaled:
                    x = (np.where(np.isnan(x), _f(f["mean"]), x) - _f(f["mean"])) / _f(f["scale"])
                cols.append(x)
                names.append(name)
                categorical.append(False)
        X = np.column_stack(cols) if cols else np.zeros((ctx.num_rows, 0))
        return Block(X, names, [self.column] * len(names), categorical)


# ------------------------------------------------------------------------------------------------
# the public constructors


def standard_scale(column: str) -> StandardScale:
    return StandardScale(column)


def min_max_scale(column: str) -> MinMaxScale:
    return MinMaxScale(column)


def max_abs_scale(column: str) -> MaxAbsScale:
    return MaxAbsScale(column)


def robust_scale(column: str, quantile_range: tuple[float, float] = (25.0, 75.0)) -> RobustScale:
    return RobustScale(column, tuple(quantile_range))  # type: ignore[arg-type]


def bucketize(column: str, edges: Sequence[float], *, one_hot: bool = False) -> Bucketize:
    return Bucketize(column, tuple(float(e) for e in edges), one_hot)


def quantile_bucketize(
    column: str, num_buckets: int = 4, *, one_hot: bool = False
) -> QuantileBucketize:
    return QuantileBucketize(column, num_buckets, one_hot)


def impute(
    column: str,
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean",
    value: float | str | None = None,
) -> Impute:
    return Impute(column, strategy, value)


def one_hot(
    column: str,
    top_k: int | None = None,
    frequency_threshold: int = 0,
    unknown: Literal["ignore", "bucket"] = "ignore",
) -> OneHot:
    return OneHot(column, top_k, frequency_threshold, unknown)


def label_encode(
    column: str,
    top_k: int | None = None,
    frequency_threshold: int = 0,
    unknown: Literal["ignore", "bucket"] = "ignore",
) -> LabelEncode:
    return LabelEncode(column, top_k, frequency_threshold, unknown)


def multi_hot(
    column: str,
    top_k: int | None = None,
    frequency_threshold: int = 0,
    unknown: Literal["ignore", "bucket"] = "ignore",
) -> MultiHot:
    return MultiHot(column, top_k, frequency_threshold, unknown)


def hash_bucketize(column: str, num_buckets: int = 1000, *, one_hot: bool = False) -> HashBucketize:
    return HashBucketize(column, num_buckets, one_hot)


def feature_cross(
    columns: Sequence[str], num_buckets: int = 1000, *, one_hot: bool = False
) -> FeatureCross:
    return FeatureCross(tuple(columns), num_buckets, one_hot)


def polynomial_expand(
    columns: Sequence[str], degree: int = 2, *, interaction_only: bool = False
) -> PolynomialExpand:
    return PolynomialExpand(tuple(columns), degree, interaction_only)


def log1p(column: str) -> Log1p:
    return Log1p(column)


def index_values(column: str) -> IndexValues:
    """Dense features from BigQuery's ``ARRAY<STRUCT<index, value>>`` (ML.ONE_HOT_ENCODER...)."""
    return IndexValues(column)


def struct_fields(column: str, *, scaled: bool = True, top_k: int | None = None) -> StructFields:
    """Each field of a STRUCT column a feature (ML.FEATURE_CROSS, ML.POLYNOMIAL_EXPAND)."""
    return StructFields(column, scaled, top_k)


def clip(column: str, min: float | None = None, max: float | None = None) -> Clip:
    return Clip(column, min, max)


def datetime_parts(
    column: str,
    parts: Sequence[str] = ("year", "month", "day", "dayofweek", "hour"),
    *,
    standardize: bool = False,
) -> DatetimeParts:
    return DatetimeParts(column, tuple(parts), standardize)


def bag_of_words(
    column: str,
    ngram_range: tuple[int, int] = (1, 1),
    top_k: int | None = None,
    tfidf: bool = False,
) -> BagOfWords:
    return BagOfWords(column, (int(ngram_range[0]), int(ngram_range[1])), top_k, tfidf)


def ngrams(
    column: str,
    ngram_range: tuple[int, int] = (1, 2),
    top_k: int | None = None,
    tfidf: bool = False,
) -> BagOfWords:
    """:func:`bag_of_words` with n-grams (unigrams and bigrams by default)."""
    return bag_of_words(column, ngram_range, top_k, tfidf)
