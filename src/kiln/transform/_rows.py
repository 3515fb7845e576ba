"""A fitted transform compiled for a few rows of Python values: what online serving predicts on.

``FittedTransform.transform(table)`` is vectorised over Arrow columns: right for a million rows,
but for one row its fixed cost per op and per column (Arrow arrays, casts, kernels) is most of a
prediction. :func:`compile_rows` turns a fitted transform into a :class:`RowPlan` that maps a
few rows, given as one list of Python values per input column, straight to the feature matrix,
with plain float arithmetic.

No skew: the plan gives exactly the numbers ``transform(table).X`` (or ``one_hot_features``)
gives for the Arrow table of those values, in the same columns, order and float64 layout. It
does so only where it is sure of it; otherwise it says so (``None``) and the caller takes the
Arrow path, which answers (or raises its own error). The plan answers None for:

* an op it does not know (``multi_hot``, ``datetime_parts``, ``bag_of_words``, a custom op, a
  stacked transform): :func:`compile_rows` returns None;
* values whose Arrow conversion it does not mirror: numbers sent as text, an infinity, an
  integer beyond 2**53, a bool mixed with numbers, a number where a categorical op reads the
  column (Arrow's float formatting), a log1p of a value <= -1, a result that overflows.

Values are read the way Arrow reads a column of them (``pa.array(values)``, or the serving
codec's typed arrays): ``None`` is null, a float NaN is NaN, ``int`` and ``float`` are numbers,
``bool`` is 1.0 / 0.0 for numeric ops and ``"true"`` / ``"false"`` for categorical ones.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kiln.transform._ops import MISSING, OPS, FloatArray, Op, State

if TYPE_CHECKING:
    from kiln.transform._graph import FittedTransform, OneHotFeatures

__all__ = ["FloatColumns", "RowPlan", "compile_rows"]

_NONE = type(None)
_NUMBERS = frozenset({float, int, _NONE})
_FLOAT = {float}
_BOOLS = frozenset({bool, _NONE})
_TEXT = frozenset({str, _NONE})
_EXACT_INT = 2**53  # Arrow's int64 -> float64 cast refuses integers past it
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


class _Unsure(Exception):
    """Raised inside a plan where it cannot be sure to match the Arrow path."""


class FloatColumns(dict[str, list[Any]]):
    """Columns whose every value the caller has checked is a Python ``float`` (what a request
    of numbers decodes to): the plan does not check their types again."""


class _Work:
    """The rows being transformed: raw input columns, and the ones earlier ops rewrote.

    A rewritten column is held as floats (numeric rewrites) or strings (a categorical impute);
    ``from_fill`` marks a string column that a numeric fill wrote (impute of an all-null column:
    Arrow's path goes through the fill's text there), readable as numbers but not as text."""

    __slots__ = ("from_fill", "n", "numbers", "raw", "texts")

    def __init__(self, raw: Mapping[str, Sequence[Any]], n: int) -> None:
        self.raw = raw
        self.n = n
        self.numbers: dict[str, list[float]] = {}
        self.texts: dict[str, list[str | None]] = {}
        self.from_fill: dict[str, float] = {}

    def numeric(self, name: str, *, allow_inf: bool = False) -> list[float]:
        """Like ``Context.numeric``: floats, null -> NaN; unsure of anything else."""
        done = self.numbers.get(name)
        if done is not None:
            return _checked(done, allow_inf)
        if name in self.texts:
            fill = self.from_fill.get(name)
            if fill is None:
                raise _Unsure  # text parsed as numbers: Arrow's parser decides
            return _checked([fill] * self.n, allow_inf)
        values = self.raw[name]
        types = set(map(type, values))
        if types <= _NUMBERS:
            out = []
            for v in values:
                if v is None:
                    out.append(math.nan)
                elif type(v) is int:
                    if not -_EXACT_INT <= v <= _EXACT_INT:
                        raise _Unsure
                    out.append(float(v))
                else:
                    out.append(v)
            return _checked(out, allow_inf)
        if types <= _BOOLS:
            return [math.nan if v is None else (1.0 if v else 0.0) for v in values]
        raise _Unsure

    def is_numeric(self, name: str) -> bool:
        """Whether ``impute`` takes its numeric branch (an int, float or decimal Arrow column)."""
        if name in self.numbers:
            return True
        if name in self.texts:
            return False
        types = set(map(type, self.raw[name]))
        if types <= _NUMBERS:
            return types != {_NONE}  # all null: Arrow's null type, not a number type
        if types <= _BOOLS or types <= _TEXT:
            return False
        raise _Unsure

    def strings(self, name: str) -> list[str | None]:
        """Like ``Context.strings(fill=False)``: text, None for null (and NaN)."""
        done = self.texts.get(name)
        if done is not None:
            if name in self.from_fill:
                raise _Unsure  # a number's text: Arrow's formatting decides
            return done
        if name in self.numbers:
            raise _Unsure
        values = self.raw[name]
        types = set(map(type, values))
        if types <= _TEXT:
            return list(values)
        if types <= _BOOLS:
            return [None if v is None else ("true" if v else "false") for v in values]
        if types <= {float, _NONE} and all(v is None or v != v for v in values):
            return [None] * self.n  # NaN is missing
        raise _Unsure  # numbers as categories: Arrow's number formatting decides


def _checked(values: list[float], allow_inf: bool) -> list[float]:
    if not allow_inf:
        for v in values:
            if v in (math.inf, -math.inf):
                raise _Unsure  # the Arrow path raises its DataError naming the row
    return values


# A compiled op: reads and rewrites the work, and adds output blocks (a dense feature is a list
# of n floats; several dense features, a (features x n) array; a one-hot block is its width and
# per row the offset of its 1, NaN for none).
_Dense = list[float]
_Hot = tuple[int, list[float]]
_Step = Callable[[_Work, list["_Dense | _Hot | FloatArray"]], None]


def _scale(column: str, center: float, scale: float) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        out.append([(v - center) / scale for v in work.numeric(column)])

    return step


def _max_abs(column: str, scale: float) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        out.append([v / scale for v in work.numeric(column)])

    return step


def _impute(column: str, fill: Any) -> _Step:
    text = None if fill is None else str(fill)
    number = float(fill) if type(fill) in (int, float) else None

    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        if work.is_numeric(column) and not isinstance(fill, str):
            f = math.nan if fill is None else float(fill)
            work.numbers[column] = [f if v != v else v for v in work.numeric(column)]
            return
        # the text branch (a string, bool or all-null column): null -> MISSING -> the fill
        values: list[str | None] = [MISSING if v is None else v for v in work.strings(column)]
        if text is not None:
            values = [text if v == MISSING else v for v in values]
        work.numbers.pop(column, None)
        work.texts[column] = values
        if number is not None and all(v == text for v in values):
            work.from_fill[column] = number
        else:
            work.from_fill.pop(column, None)

    return step


def _clip(column: str, lo: float, hi: float) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        x = work.numeric(column, allow_inf=True)
        work.numbers[column] = [v if v != v else min(max(v, lo), hi) for v in x]
        work.texts.pop(column, None)

    return step


def _log1p(column: str) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        x = work.numeric(column)
        if any(v <= -1 for v in x):
            raise _Unsure  # the Arrow path raises its DataError naming the row
        work.numbers[column] = np.log1p(np.asarray(x, dtype=np.float64)).tolist()
        work.texts.pop(column, None)

    return step


def _emit(column: str) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        out.append(work.numeric(column))

    return step


def _bucketize(column: str, edges: list[float], one_hot: bool) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        codes = [
            v if v != v else float(bisect.bisect_right(edges, v)) for v in work.numeric(column)
        ]
        out.append((len(edges) + 1, codes) if one_hot else codes)

    return step


def _categorical(column: str, vocab: list[str], bucket: bool, one_hot: bool) -> _Step:
    index: dict[str, float] = {}
    for i, v in enumerate(vocab):
        index.setdefault(v, float(i))
    unknown = float(len(vocab)) if bucket else math.nan
    missing = index.get(MISSING, unknown)
    width = len(vocab) + bucket

    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        codes = [missing if v is None else index.get(v, unknown) for v in work.strings(column)]
        out.append((width, codes) if one_hot else codes)

    return step


def _fnv(text: str) -> int:
    h = _FNV_OFFSET
    for byte in text.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def _hashed(columns: list[str], buckets: int, one_hot: bool) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        parts = [[MISSING if v is None else v for v in work.strings(c)] for c in columns]
        codes = [float(_fnv("\x1f".join(p)) % buckets) for p in zip(*parts, strict=True)]
        out.append((buckets, codes) if one_hot else codes)

    return step


def _polynomial(columns: list[str], combos: list[tuple[int, ...]]) -> _Step:
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        xs = [work.numeric(c) for c in columns]
        for combo in combos:
            v = [1.0] * work.n
            for i in combo:
                v = [a * b for a, b in zip(v, xs[i], strict=True)]
            out.append(v)

    return step


def _passthrough(names: list[str]) -> _Step:
    # (no op names a passthrough column, so none is ever rewritten)
    def step(work: _Work, out: list[_Dense | _Hot | FloatArray]) -> None:
        # all at once when every value is a float (what a request of numbers is)
        flat = list(itertools.chain.from_iterable(map(work.raw.__getitem__, names)))
        if isinstance(work.raw, FloatColumns) or set(map(type, flat)) == _FLOAT:
            block = np.array(flat, dtype=np.float64).reshape(len(names), work.n)
            if np.isinf(block).any():
                raise _Unsure
            out.append(block)
            return
        for name in names:
            out.append(work.numeric(name))

    return step


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def _compile_op(op: Op, state: State) -> _Step | None:
    """The step for one built-in op, None for an op (or a subclass of one) the plan lacks."""
    kind = op.kind
    if OPS.get(kind) is not type(op):
        return None
    p: Any = op
    if kind.endswith("_scale") and _f(state["scale"]) == 0:
        return None  # (only a hand-edited state): numpy's x / 0, not Python's ZeroDivisionError
    if kind == "standard_scale":
        return _scale(p.column, _f(state["mean"]), _f(state["scale"]))
    if kind == "min_max_scale":
        return _scale(p.column, _f(state["min"]), _f(state["scale"]))
    if kind == "robust_scale":
        return _scale(p.column, _f(state["center"]), _f(state["scale"]))
    if kind == "max_abs_scale":
        return _max_abs(p.column, _f(state["scale"]))
    if kind == "impute":
        return _impute(p.column, state["fill"])
    if kind == "clip":
        return _clip(
            p.column, -math.inf if p.min is None else p.min, math.inf if p.max is None else p.max
        )
    if kind == "log1p":
        return _log1p(p.column)
    if kind in ("bucketize", "quantile_bucketize"):
        edges = [float(e) for e in np.asarray(state["edges"], dtype=np.float64).tolist()]
        return _bucketize(p.column, edges, bool(p.one_hot))
    if kind in ("one_hot", "label_encode"):
        return _categorical(
            p.column, list(state["vocabulary"]), p.unknown == "bucket", kind == "one_hot"
        )
    if kind == "hash_bucketize":
        return _hashed([p.column], int(p.num_buckets), bool(p.one_hot))
    if kind == "feature_cross":
        return _hashed(list(p.columns), int(p.num_buckets), bool(p.one_hot))
    if kind == "polynomial_expand":
        combos_of = (
            itertools.combinations
            if p.interaction_only
            else itertools.combinations_with_replacement
        )
        combos = [
            combo for d in range(1, p.degree + 1) for combo in combos_of(range(len(p.columns)), d)
        ]
        return _polynomial(list(p.columns), combos)
    return None


class RowPlan:
    """A fitted transform compiled for a few rows (see the module docstring).

    ``columns``: the input columns it reads, each to be given as one list of values (one per
    row). :meth:`matrix` gives ``transform(table).X``; :meth:`one_hot_features` gives
    ``one_hot_features(table)``; each returns None where only the Arrow path can answer."""

    def __init__(self, steps: list[_Step], columns: list[str]) -> None:
        self._steps = steps
        self.columns = columns

    def _blocks(
        self, values: Mapping[str, Sequence[Any]], n: int
    ) -> list[_Dense | _Hot | FloatArray] | None:
        work = _Work(values, n)
        out: list[_Dense | _Hot | FloatArray] = []
        try:
            for step in self._steps:
                step(work, out)
        except _Unsure:
            return None
        return out

    def matrix(self, values: Mapping[str, Sequence[Any]], n: int) -> FloatArray | None:
        """The feature matrix (rows x features, float64, column-major as the Arrow path's)."""
        blocks = self._blocks(values, n)
        if not blocks:
            return None
        hot: list[tuple[int, list[float]]] = []
        if len(blocks) == 1 and type(blocks[0]) is np.ndarray:
            Xt = blocks[0]
        elif all(type(b) is list for b in blocks):
            Xt = np.array(blocks, dtype=np.float64)
        else:
            width = sum(_width(b) for b in blocks)
            Xt = np.zeros((width, n))
            at = 0
            for b in blocks:
                if type(b) is tuple:
                    hot.append((at, b[1]))
                else:
                    Xt[at : at + _width(b)] = b
                at += _width(b)
            for start, codes in hot:
                for r, c in enumerate(codes):
                    if c == c:
                        Xt[start + int(c), r] = 1.0
        if np.isinf(Xt).any():
            return None  # an overflow: the Arrow path's trainer check names it
        X: FloatArray = Xt.T
        return X

    def one_hot_features(
        self, values: Mapping[str, Sequence[Any]], n: int
    ) -> OneHotFeatures | None:
        """The features with one-hot blocks as codes, as ``FittedTransform.one_hot_features``."""
        from kiln.transform._graph import OneHotFeatures

        blocks = self._blocks(values, n)
        if not blocks:
            return None
        dense: list[_Dense | FloatArray] = []
        dense_columns: list[int] = []
        hot: list[tuple[int, FloatArray]] = []
        width = 0
        for b in blocks:
            k = _width(b)
            if isinstance(b, tuple):
                hot.append((width, np.array(b[1], dtype=np.float64)))
            else:
                dense.append(b)
                dense_columns.extend(range(width, width + k))
            width += k
        if not dense:
            D: FloatArray = np.empty((n, 0), order="F")
        elif all(type(b) is list for b in dense):
            D = np.array(dense, dtype=np.float64).T
        else:
            D = np.vstack([np.asarray(b, dtype=np.float64).reshape(-1, n) for b in dense]).T
        if np.isinf(D).any():
            return None
        return OneHotFeatures((n, width), D, np.asarray(dense_columns, dtype=np.intp), hot)


def _width(block: _Dense | _Hot | FloatArray) -> int:
    if type(block) is list:
        return 1
    if type(block) is tuple:
        return int(block[0])
    return int(block.shape[0])  # type: ignore[union-attr]


def compile_rows(fitted: FittedTransform) -> RowPlan | None:
    """``fitted`` as a :class:`RowPlan`, or None when one of its ops has no row form."""
    from kiln.transform._graph import FittedTransform, StackedTransform

    if type(fitted) is not FittedTransform or isinstance(fitted, StackedTransform):
        return None
    ops, states = fitted.ops, fitted.states
    consumed = {c for op in ops if not op.rewrites for c in op.inputs()}
    last_rewrite: dict[str, int] = {}
    for i, op in enumerate(ops):
        if op.rewrites:
            last_rewrite[op.inputs()[0]] = i
    emit_at = {i: c for c, i in last_rewrite.items() if c not in consumed}
    steps: list[_Step] = []
    for i, (op, state) in enumerate(zip(ops, states, strict=True)):
        step = _compile_op(op, state)
        if step is None:
            return None
        steps.append(step)
        if op.rewrites and i in emit_at:
            steps.append(_emit(emit_at[i]))
    if fitted.passthrough:
        steps.append(_passthrough(list(fitted.passthrough)))
    return RowPlan(steps, fitted.input_columns)
