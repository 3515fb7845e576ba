"""The transform graph: ops fitted over the whole training table in one pass each, then applied
identically (vectorised) in training, batch prediction and serving.

``TransformGraph(ops).fit(table)`` runs the ops in order: each analyzer sees the working table as
the ops before it left it (so ``impute`` then ``standard_scale`` scales the imputed column, as a
scikit-learn pipeline would). ``FittedTransform.transform(table)`` gives a :class:`FeatureMatrix`.

Output features, in order: each emitting op's block, in op order; a column only rewritten (say
``impute`` or ``log1p`` with nothing after) at the place of its last rewrite; then the numeric
columns no op names, in table order (``passthrough``; ``exclude`` keeps the label out). Other
columns no op names are ignored with a :class:`TransformWarning` at fit; extra columns at
transform time are ignored. When two ops emit the same name (``standard_scale("x")`` and
``robust_scale("x")``) the later one is named after its op: ``robust_scale(x)``.

The JSON format (``FittedTransform.to_json()``; ``save`` writes it as ``transform.json``, with its
arrays in ``arrays.npz`` written and read with ``allow_pickle=False``)::

    {"format": "kiln.transform", "version": 1,
     "ops": [{"op": "standard_scale", "params": {"column": "age"},
              "state": {"mean": 41.5, "scale": 12.1}},
             {"op": "quantile_bucketize", "params": {...},
              "state": {"edges": {"$array": [1.0, 2.0]}}}],   # or {"$npz": "1.edges"} on disk
     "passthrough": ["income"], "exclude": ["label"]}

Loading builds ops from their registered names and plain values: it never executes stored code.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kiln._lazy import LazyModule
from kiln.errors import DataError, NotFittedError
from kiln.transform._ops import OPS, Block, Context, FloatArray, Op, State, single_block

if TYPE_CHECKING:
    import pyarrow as pa
else:  # neither loading a model nor serving it a few rows needs Arrow (see kiln.transform._ops)
    pa = LazyModule("pyarrow")

__all__ = [
    "FORMAT",
    "FeatureMatrix",
    "FittedTransform",
    "OneHotFeatures",
    "StackedTransform",
    "TransformGraph",
    "TransformWarning",
]

FORMAT = "kiln.transform"
FORMAT_VERSION = 1


class TransformWarning(UserWarning):
    """Something a transform dropped or ignored (a constant column, a column no op uses)."""


@dataclass
class OneHotFeatures:
    """A feature matrix with its one-hot blocks held as codes: ``dense`` holds the other
    columns (their places in the full matrix in ``dense_columns``), ``hot`` each one-hot block
    as (its first column, per row the offset of its 1 or NaN for none). ``self @ W`` equals
    ``X @ W`` for the full ``X`` of ``shape``, at the cost of a lookup per block and row."""

    shape: tuple[int, int]
    dense: FloatArray
    dense_columns: np.ndarray[Any, np.dtype[np.intp]]
    hot: list[tuple[int, FloatArray]]

    def __matmul__(self, W: FloatArray) -> FloatArray:
        if W.shape[0] != self.shape[1]:
            raise ValueError(f"matmul: {self.shape} @ {W.shape}")
        out: FloatArray = self.dense @ W[self.dense_columns]
        padded = np.concatenate([W, np.zeros((1, *W.shape[1:]))])  # row -1: no category
        for b in range(len(self.hot)):
            out += padded[self.hot_index(-1, block=b)]
        return out

    @property
    def hot_columns(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The columns of the full matrix that the one-hot blocks hold (all but the dense ones)."""
        return np.setdiff1d(np.arange(self.shape[1]), self.dense_columns)

    def hot_index(self, missing: int, *, block: int | None = None) -> np.ndarray[Any, Any]:
        """Per row, the full matrix's column of each block's 1 (rows x blocks; one block's column
        with ``block``), ``missing`` where a block has none (a null or unseen category)."""
        blocks = self.hot if block is None else [self.hot[block]]
        index = np.full((self.shape[0], len(blocks)), missing, dtype=np.intp)
        for b, (start, codes) in enumerate(blocks):
            ok = ~np.isnan(codes)
            index[ok, b] = codes[ok].astype(np.intp) + start
        return index if block is None else index[:, 0]

    def take(self, rows: np.ndarray[Any, Any]) -> OneHotFeatures:
        """The rows ``rows`` (integer positions), as ``X[rows]`` takes them from the full matrix."""
        rows = np.asarray(rows)
        return OneHotFeatures(
            (len(rows), self.shape[1]),
            self.dense[rows],
            self.dense_columns,
            [(start, codes[rows]) for start, codes in self.hot],
        )

    def column_range(self, start: int, stop: int) -> OneHotFeatures:
        """Columns ``start:stop`` of the full matrix, as ``X[:, start:stop]`` (a one-hot block
        must lie wholly inside or outside them: each of a stacked transform's parts does)."""
        inside = (self.dense_columns >= start) & (self.dense_columns < stop)
        hot = []
        for first, codes in self.hot:
            ok = ~np.isnan(codes)
            last = first + int(codes[ok].max()) if ok.any() else first
            if (start <= first < stop) != (start <= last < stop):
                raise ValueError(f"columns {start}:{stop} split the one-hot block at {first}")
            if start <= first < stop:
                hot.append((first - start, codes))
        return OneHotFeatures(
            (self.shape[0], stop - start),
            self.dense[:, inside],
            self.dense_columns[inside] - start,
            hot,
        )

    def toarray(self) -> FloatArray:
        """The full matrix (what ``transform(table).X`` gives)."""
        X = np.zeros(self.shape, order="F")
        X[:, self.dense_columns] = self.dense
        for start, codes in self.hot:
            ok = ~np.isnan(codes)
            X[np.nonzero(ok)[0], codes[ok].astype(np.intp) + start] = 1.0
        return X


@dataclass
class FeatureMatrix:
    """What a trainer consumes: ``X`` (float64, rows x features) and, per feature, its readable
    name (``"age"``, ``"city=Paris"``), its input column (``source``), and which features hold
    integer category codes (``categorical``, for trees' native categoricals)."""

    X: FloatArray
    names: list[str]
    categorical: list[int]
    source: list[str]


def _is_numeric(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return False
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
    )


class TransformGraph:
    """Ops to fit, in order. ``exclude`` names columns never passed through (the label)."""

    def __init__(
        self, ops: Sequence[Op], *, exclude: Sequence[str] = (), passthrough: bool = True
    ) -> None:
        for op in ops:
            if not isinstance(op, Op):
                raise DataError(f"not a transform op: {op!r}; build ops with kiln.transform's ops")
        self.ops = list(ops)
        self.exclude = list(exclude)
        self.passthrough = passthrough

    def __repr__(self) -> str:
        return f"TransformGraph({self.ops!r}, exclude={self.exclude!r})"

    def fit(self, table: pa.Table) -> FittedTransform:
        """Run every analyzer over ``table`` (one full pass per op); return the fitted transform."""
        if not isinstance(table, pa.Table):
            raise DataError(f"a transform fits on an Arrow table, not {type(table).__name__}")
        ctx = Context(table)
        states: list[State] = []
        for op in self.ops:
            for name in op.inputs():
                ctx.raw(name)  # a missing column fails before any work
            state = op.fit(ctx)
            states.append(state)
            if op.rewrites:
                op.apply(ctx, state)
        named = {c for op in self.ops for c in op.inputs()} | set(self.exclude)
        passthrough: list[str] = []
        ignored: list[str] = []
        for field in table.schema:
            if field.name in named:
                continue
            if not self.passthrough:
                continue  # asked for: only what the ops emit
            if _is_numeric(field.type):
                passthrough.append(field.name)
            else:
                ignored.append(field.name)
        if ignored:
            warnings.warn(
                f"columns no transform op uses and that are not numeric are ignored: "
                f"{', '.join(ignored)}; add an op (one_hot, label_encode, datetime_parts...) "
                "to use them",
                TransformWarning,
                stacklevel=2,
            )
        fitted = FittedTransform(self.ops, states, passthrough, self.exclude)
        self.fitted_ = fitted
        return fitted

    def transform(self, table: pa.Table) -> FeatureMatrix:
        """The last ``fit``'s transform applied to ``table``."""
        fitted = getattr(self, "fitted_", None)
        if fitted is None:
            raise NotFittedError(
                "this TransformGraph is not fitted yet: call fit(table) before transform"
            )
        result: FeatureMatrix = fitted.transform(table)
        return result


class FittedTransform:
    """A fitted transform graph: ``transform`` is the mapper half, vectorised."""

    def __init__(
        self,
        ops: Sequence[Op],
        states: Sequence[State],
        passthrough: Sequence[str],
        exclude: Sequence[str] = (),
    ) -> None:
        self.ops = list(ops)
        self.states = list(states)
        self.passthrough = list(passthrough)
        self.exclude = list(exclude)
        consumed = {c for op in self.ops if not op.rewrites for c in op.inputs()}
        last_rewrite: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            if op.rewrites:
                last_rewrite[op.inputs()[0]] = i
        self._emit_at = {i: c for c, i in last_rewrite.items() if c not in consumed}

    @property
    def input_columns(self) -> list[str]:
        """The columns ``transform`` needs, in first-use order."""
        seen: dict[str, None] = {}
        for op in self.ops:
            for c in op.inputs():
                seen[c] = None
        for c in self.passthrough:
            seen[c] = None
        return list(seen)

    def transform(self, table: pa.Table | pa.RecordBatch) -> FeatureMatrix:
        """``X``, names, categorical codes and sources for ``table`` (a batch or a single row)."""
        n, blocks = self._blocks(table)
        # column-major: each block's columns are copied contiguously (a row-major hstack of a
        # million rows is several times slower); trainers (numpy, LightGBM, torch) take either
        X = np.empty((n, sum(b.width for b in blocks)), order="F")
        at = 0
        for b in blocks:
            b.write(X[:, at : at + b.width])
            at += b.width
        names = [n for b in blocks for n in b.names]
        source = [s for b in blocks for s in b.source]
        flags = [f for b in blocks for f in b.categorical]
        categorical = [i for i, f in enumerate(flags) if f]
        return FeatureMatrix(X, names, categorical, source)

    def one_hot_features(self, table: pa.Table | pa.RecordBatch) -> OneHotFeatures:
        """The same features as ``transform(table).X``, one-hot blocks kept as codes: what a
        linear model predicts from (a weight lookup per category instead of a product with a
        column per category)."""
        n, blocks = self._blocks(table)
        width = sum(b.width for b in blocks)
        dense_columns: list[int] = []
        hot: list[tuple[int, FloatArray]] = []
        at = 0
        for b in blocks:
            if b.hot is not None:
                hot.append((at, b.hot))
            else:
                dense_columns.extend(range(at, at + b.width))
            at += b.width
        dense = np.empty((n, len(dense_columns)), order="F")
        at = 0
        for b in blocks:
            if b.hot is None:
                b.write(dense[:, at : at + b.width])
                at += b.width
        return OneHotFeatures((n, width), dense, np.asarray(dense_columns, dtype=np.intp), hot)

    def _blocks(self, table: pa.Table | pa.RecordBatch) -> tuple[int, list[Block]]:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise DataError(f"a transform applies to an Arrow table, not {type(table).__name__}")
        present = set(table.column_names)
        missing = [c for c in self.input_columns if c not in present]
        if missing:
            raise DataError(
                f"column {missing[0]!r} is missing from the input; the transform needs "
                f"{', '.join(repr(c) for c in missing)} (as in the training data)"
            )
        ctx = Context(table)
        blocks: list[Block] = []
        seen: set[str] = set()
        for i, (op, state) in enumerate(zip(self.ops, self.states, strict=True)):
            if op.rewrites:
                op.apply(ctx, state)
                column = self._emit_at.get(i)
                if column is not None:
                    blocks.append(single_block(ctx.numeric(column), column))
            else:
                block = op.apply(ctx, state)
                assert block is not None
                if any(n in seen for n in block.names):  # the same column through two ops
                    block.names = [f"{op.kind}({n})" for n in block.names]
                blocks.append(block)
            seen.update(blocks[-1].names if blocks else ())
        if self.passthrough:
            blocks.append(ctx.numeric_block(self.passthrough))
        return table.num_rows, blocks

    # -- serialisation ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The fitted graph as JSON-able values, arrays inline."""
        return self._encode(lambda key, arr: {"$array": [_num(v) for v in arr.tolist()]})

    def save(self, folder: Path | str) -> None:
        """Write ``transform.json`` and ``arrays.npz`` into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, FloatArray] = {}

        def put(key: str, arr: FloatArray) -> dict[str, Any]:
            arrays[key] = np.asarray(arr, dtype=np.float64)
            return {"$npz": key}

        body = self._encode(put)
        with open(folder / "arrays.npz", "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        (folder / "transform.json").write_text(
            json.dumps(body, indent=1, allow_nan=False), encoding="utf-8"
        )

    def _encode(self, array: Any) -> dict[str, Any]:
        ops = []
        for i, (op, state) in enumerate(zip(self.ops, self.states, strict=True)):
            params = {f.name: _plain(getattr(op, f.name)) for f in fields(op)}
            encoded: dict[str, Any] = {}
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    encoded[key] = array(f"{i}.{key}", value)
                else:
                    encoded[key] = _plain(value)
            ops.append({"op": op.kind, "params": params, "state": encoded})
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "ops": ops,
            "passthrough": list(self.passthrough),
            "exclude": list(self.exclude),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any], *, source: str = "transform") -> FittedTransform:
        if isinstance(body, dict) and body.get("format") == STACK_FORMAT:
            return StackedTransform.from_json(body, source=source)
        if isinstance(body, dict) and body.get("format") == "kiln.transform.sql":
            from kiln.transform._sql import SqlThenTransform

            return SqlThenTransform.from_json(body, source=source)
        return cls._decode(body, {}, source)

    @classmethod
    def load(cls, folder: Path | str) -> FittedTransform:
        folder = Path(folder)
        if (folder / STACK_FILE).exists():
            return StackedTransform.load(folder)
        if (folder / "sql.json").exists():
            from kiln.transform._sql import SqlThenTransform

            return SqlThenTransform.load(folder)
        try:
            body = json.loads((folder / "transform.json").read_text(encoding="utf-8"))
            arrays: dict[str, FloatArray] = {}
            npz = folder / "arrays.npz"
            if npz.exists():
                with np.load(npz, allow_pickle=False) as data:
                    arrays = {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
        except (OSError, ValueError) as e:
            raise DataError(f"{folder}: cannot read the saved transform ({e})") from e
        return cls._decode(body, arrays, str(folder / "transform.json"))

    @classmethod
    def _decode(
        cls, body: dict[str, Any], arrays: dict[str, FloatArray], source: str
    ) -> FittedTransform:
        try:
            if body.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} document (format: {body.get('format')!r})")
            if int(body.get("version", 0)) > FORMAT_VERSION:
                raise ValueError(
                    f"format version {body['version']} is newer than this Kiln reads "
                    f"({FORMAT_VERSION}); upgrade Kiln"
                )
            ops: list[Op] = []
            states: list[State] = []
            for entry in body["ops"]:
                kind = entry["op"]
                if kind not in OPS:
                    raise ValueError(f"unknown op {kind!r}")
                params = {k: _tuples(v) for k, v in entry["params"].items()}
                ops.append(OPS[kind](**params))
                state: State = {}
                for key, value in entry["state"].items():
                    if isinstance(value, dict) and "$array" in value:
                        state[key] = np.asarray(
                            [math.nan if v is None else v for v in value["$array"]],
                            dtype=np.float64,
                        )
                    elif isinstance(value, dict) and "$npz" in value:
                        state[key] = arrays[value["$npz"]]
                    else:
                        state[key] = value
                states.append(state)
            return cls(ops, states, list(body["passthrough"]), list(body.get("exclude", [])))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{source}: not a valid Kiln transform: {e}") from e


STACK_FORMAT = "kiln.transform.stack"
STACK_FILE = "stack.json"


class StackedTransform(FittedTransform):
    """Fitted transforms side by side, for an ensemble whose members each read their own
    features: ``X`` is the parts' matrices one after another, part ``i`` in columns
    ``ranges[i]``; its feature names are prefixed ``m{i}.``. Saved as one folder per part plus
    ``stack.json``."""

    def __init__(self, parts: Sequence[FittedTransform], widths: Sequence[int]) -> None:
        super().__init__([], [], [])
        if len(parts) != len(widths) or not parts:
            raise DataError("a stacked transform needs one width per part, and at least a part")
        self.parts = list(parts)
        self.widths = [int(w) for w in widths]

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """Each part's columns in ``X``, as (start, stop)."""
        stops = np.cumsum(self.widths).tolist()
        return [(stop - w, stop) for stop, w in zip(stops, self.widths, strict=True)]

    @property
    def input_columns(self) -> list[str]:
        return list(dict.fromkeys(c for part in self.parts for c in part.input_columns))

    def transform(self, table: pa.Table | pa.RecordBatch) -> FeatureMatrix:
        matrices = [part.transform(table) for part in self.parts]
        for i, (m, width) in enumerate(zip(matrices, self.widths, strict=True)):
            if m.X.shape[1] != width:  # only a hand-edited stack.json can get here
                raise DataError(
                    f"stacked transform part {i} gave {m.X.shape[1]} columns, not {width}"
                )
        X = np.empty((matrices[0].X.shape[0], sum(self.widths)), order="F")
        names: list[str] = []
        source: list[str] = []
        categorical: list[int] = []
        for i, (m, (start, stop)) in enumerate(zip(matrices, self.ranges, strict=True)):
            X[:, start:stop] = m.X
            names += [f"m{i}.{n}" for n in m.names]
            source += m.source
            categorical += [start + c for c in m.categorical]
        return FeatureMatrix(X, names, categorical, source)

    def one_hot_features(self, table: pa.Table | pa.RecordBatch) -> OneHotFeatures:
        parts = [part.one_hot_features(table) for part in self.parts]
        starts = [start for start, _ in self.ranges]
        return OneHotFeatures(
            (parts[0].shape[0], sum(self.widths)),
            np.hstack([p.dense for p in parts]),
            np.concatenate([p.dense_columns + s for p, s in zip(parts, starts, strict=True)]),
            [(s + h, codes) for p, s in zip(parts, starts, strict=True) for h, codes in p.hot],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STACK_FORMAT,
            "version": FORMAT_VERSION,
            "parts": [part.to_json() for part in self.parts],
            "widths": self.widths,
        }

    def save(self, folder: Path | str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(self.parts):
            part.save(folder / f"part_{i}")
        body = {"format": STACK_FORMAT, "version": FORMAT_VERSION, "widths": self.widths}
        (folder / STACK_FILE).write_text(json.dumps(body, indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, body: dict[str, Any], *, source: str = "transform") -> StackedTransform:
        try:
            parts = [FittedTransform.from_json(p, source=source) for p in body["parts"]]
            return cls(parts, body["widths"])
        except (KeyError, TypeError) as e:
            raise DataError(f"{source}: not a valid stacked Kiln transform: {e}") from e

    @classmethod
    def load(cls, folder: Path | str) -> StackedTransform:
        folder = Path(folder)
        try:
            body = json.loads((folder / STACK_FILE).read_text(encoding="utf-8"))
            widths = [int(w) for w in body["widths"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{folder}: cannot read the stacked transform ({e})") from e
        if body.get("format") != STACK_FORMAT:
            raise DataError(f"{folder / STACK_FILE}: not a {STACK_FORMAT}")
        parts = [FittedTransform.load(folder / f"part_{i}") for i in range(len(widths))]
        return cls(parts, widths)


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return _num(v.item())
    return _num(v)


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v
