"""A fitted SQL SELECT in front of a fitted transform: what a ``kiln sql`` TRANSFORM clause
compiles to.

:class:`SqlSelect` is a list of ``(output name, DuckDB scalar expression)`` whose analyzers were
already fitted and folded into constants (``(("x" - 41.2e0) / 12.5e0)``); it is replayed on any
Arrow table in a sandboxed DuckDB connection: no file, network or extension access, and its
configuration locked. :class:`SqlThenTransform` is that SELECT, then the automatic preprocessing
fitted on the SELECT's output.

Saved as ``sql.json`` (this format) beside ``then/`` (the fitted transform)::

    {"format": "kiln.transform.sql", "version": 1,
     "items": [["xs", "((x - 41.2e0) / 12.5e0)"], ["y", "y"]],
     "input_columns": ["x"], "label": "y", "label_inputs": ["y"]}

Loading parses every expression with sqlglot and accepts only scalar expressions over the input
columns built from an allowlist of operators and functions (:data:`ALLOWED_NODES`,
:data:`ALLOWED_FUNCTIONS`): no subquery, table function, statement or unknown function. Nothing
else from the folder is ever run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from kiln.errors import DataError, ModelFormatError
from kiln.transform._graph import FeatureMatrix, FittedTransform, OneHotFeatures

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ALLOWED_NODES",
    "SQL_FILE",
    "SQL_FORMAT",
    "SqlSelect",
    "SqlThenTransform",
    "farm_fingerprint",
]

SQL_FORMAT = "kiln.transform.sql"
SQL_FORMAT_VERSION = 1
SQL_FILE = "sql.json"
INPUT_TABLE = "__kiln_input"

ALLOWED_NODES = frozenset(
    {
        # values, names, types
        "Column", "Identifier", "Literal", "Null", "Boolean", "Paren", "Cast", "TryCast",
        "DataType", "DataTypeParam", "Var", "Interval", "Array", "Struct", "PropertyEQ",
        "Lambda", "Bracket", "Slice", "Tuple",
        # operators
        "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "Neg", "Pow", "DPipe",
        "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "Not", "And",
        "Or", "Xor", "In", "Between", "Like", "ILike",
        "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
        # conditionals
        "Case", "If", "Coalesce", "Nullif",
        # numbers
        "Abs", "Ceil", "Floor", "Round", "Sqrt", "Ln", "Log", "Exp", "Sign", "Greatest", "Least",
        "SafeDivide",
        # strings
        "Length", "Lower", "Upper", "Substring", "Trim", "Concat", "ConcatWs", "StrPosition",
        "Left", "Right", "Pad", "Reverse", "Initcap", "RegexpLike", "RegexpExtract",
        "RegexpReplace", "Split", "StartsWith", "EndsWith", "Replace",
        # dates and times
        "Extract", "DateTrunc", "TimestampTrunc", "DateAdd", "DateSub", "DateDiff", "TsOrDsToDate",
        # lists (emitted by the encoders and NGRAMS)
        "ArrayToString", "Transform", "ArrayFilter", "Flatten", "GenerateSeries", "ArrayDistinct",
        "ArraySort", "ArraySize", "ArrayContains", "ArrayConcat",
    }
)  # fmt: skip
"""The sqlglot node kinds a stored expression may contain."""

ALLOWED_FUNCTIONS = frozenset(
    {"LIST_POSITION", "LIST_EXTRACT", "LIST_CONTAINS", "KILN_FARM_FINGERPRINT", "STRUCT_PACK"}
)
"""Functions sqlglot does not model (``Anonymous`` nodes) that a stored expression may call."""


# ------------------------------------------------------------------------------------------------
# FarmHash Fingerprint64 (BigQuery's FARM_FINGERPRINT): Google's farmhashna::Hash64, in Python

_M = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F


def _rot(v: int, s: int) -> int:
    return ((v >> s) | (v << (64 - s))) & _M


def _u64(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 8], "little")


def _u32(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 4], "little")


def _mix(v: int) -> int:
    return v ^ (v >> 47)


def _h16(u: int, v: int, mul: int) -> int:
    a = _mix(((u ^ v) * mul) & _M)
    b = _mix(((v ^ a) * mul) & _M)
    return (b * mul) & _M


def _len0to16(s: bytes, n: int) -> int:
    if n >= 8:
        mul = _K2 + n * 2
        a = (_u64(s, 0) + _K2) & _M
        b = _u64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _h16(c, d, mul)
    if n >= 4:
        return _h16((n + (_u32(s, 0) << 3)) & _M, _u32(s, n - 4), _K2 + n * 2)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes, n: int) -> int:
    mul = _K2 + n * 2
    a = (_u64(s, 0) * _K1) & _M
    b = _u64(s, 8)
    c = (_u64(s, n - 8) * mul) & _M
    d = (_u64(s, n - 16) * _K2) & _M
    return _h16(
        (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
        (a + _rot((b + _K2) & _M, 18) + c) & _M,
        mul,
    )


def _len33to64(s: bytes, n: int) -> int:
    mul = _K2 + n * 2
    a = (_u64(s, 0) * _K2) & _M
    b = _u64(s, 8)
    c = (_u64(s, n - 8) * mul) & _M
    d = (_u64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _h16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_u64(s, 16) * mul) & _M
    f = _u64(s, 24)
    g = ((y + _u64(s, n - 32)) * mul) & _M
    h = ((z + _u64(s, n - 24)) * mul) & _M
    return _h16(
        (_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
        (e + _rot((f + a) & _M, 18) + g) & _M,
        mul,
    )


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _u64(s, i), _u64(s, i + 8), _u64(s, i + 16), _u64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def _fingerprint_u64(s: bytes) -> int:
    n = len(s)
    if n <= 16:
        return _len0to16(s, n)
    if n <= 32:
        return _len17to32(s, n)
    if n <= 64:
        return _len33to64(s, n)
    x = 81
    y = (81 * _K1 + 113) & _M
    z = (_mix((y * _K2 + 113) & _M) * _K2) & _M
    v0 = v1 = w0 = w1 = 0
    x = (x * _K2 + _u64(s, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    p = 0
    while True:
        x = (_rot((x + y + v0 + _u64(s, p + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v1 + _u64(s, p + 48)) & _M, 42) * _K1) & _M
        x ^= w1
        y = (y + v0 + _u64(s, p + 40)) & _M
        z = (_rot((z + w0) & _M, 33) * _K1) & _M
        v0, v1 = _weak32(s, p, (v1 * _K1) & _M, (x + w0) & _M)
        w0, w1 = _weak32(s, p + 32, (z + w1) & _M, (y + _u64(s, p + 16)) & _M)
        z, x = x, z
        p += 64
        if p == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    p = last64
    w0 = (w0 + ((n - 1) & 63)) & _M
    v0 = (v0 + w0) & _M
    w0 = (w0 + v0) & _M
    x = (_rot((x + y + v0 + _u64(s, p + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v1 + _u64(s, p + 48)) & _M, 42) * mul) & _M
    x ^= (w1 * 9) & _M
    y = (y + v0 * 9 + _u64(s, p + 40)) & _M
    z = (_rot((z + w0) & _M, 33) * mul) & _M
    v0, v1 = _weak32(s, p, (v1 * mul) & _M, (x + w0) & _M)
    w0, w1 = _weak32(s, p + 32, (z + w1) & _M, (y + _u64(s, p + 16)) & _M)
    z, x = x, z
    return _h16((_h16(v0, w0, mul) + _mix(y) * _K0 + z) & _M, (_h16(v1, w1, mul) + x) & _M, mul)


def farm_fingerprint(value: str | bytes) -> int:
    """BigQuery's ``FARM_FINGERPRINT``: FarmHash Fingerprint64 of the UTF-8 bytes, as a signed
    INT64."""
    u = _fingerprint_u64(value.encode("utf-8") if isinstance(value, str) else value)
    return u - (1 << 64) if u >= 1 << 63 else u


def _fingerprint_udf(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = arr.dictionary_encode()
    hashes = pa.array([farm_fingerprint(v) for v in encoded.dictionary.to_pylist()], pa.int64())
    return hashes.take(encoded.indices)


# ------------------------------------------------------------------------------------------------
# the sandboxed connection


_local = threading.local()


def sandboxed_connection() -> Any:
    """This thread's DuckDB connection for fitted expressions: in memory, no file or network
    access, no extension loading, configuration locked; ``kiln_farm_fingerprint`` registered."""
    con: Any = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = duckdb.connect(
            config={
                "enable_external_access": False,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
                "threads": 1,
            }
        )
        con.create_function(
            "kiln_farm_fingerprint", _fingerprint_udf, ["VARCHAR"], "BIGINT", type="arrow"
        )
        con.execute("SET lock_configuration = true")
        _local.con = con
    return con


def quote(name: str) -> str:
    """``name`` as a DuckDB quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------------------
# SqlSelect


class SqlSelect:
    """A fitted SELECT over the input rows: ``[(output name, DuckDB scalar expression)]``,
    replayed on any Arrow table. ``input_columns`` are the columns the feature items read;
    the ``label`` item (reading ``label_inputs``) is left out where those are missing
    (prediction)."""

    def __init__(
        self,
        items: Sequence[tuple[str, str]],
        *,
        input_columns: Sequence[str],
        label: str | None,
        label_inputs: Sequence[str] = (),
    ) -> None:
        self.items = [(str(n), str(e)) for n, e in items]
        self.input_columns = list(input_columns)
        self.label = label
        self.label_inputs = list(label_inputs)
        names = [n for n, _ in self.items]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise DataError(f"the SELECT names {dup!r} twice; give each output its own name")

    def __repr__(self) -> str:
        return f"SqlSelect({[n for n, _ in self.items]!r}, label={self.label!r})"

    @property
    def output_columns(self) -> list[str]:
        return [n for n, _ in self.items]

    def apply(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        """The SELECT's output for ``table``: one row per input row, in order."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise DataError(
                f"a SQL transform applies to an Arrow table, not {type(table).__name__}"
            )
        present = set(table.column_names)
        missing = [c for c in self.input_columns if c not in present]
        if missing:
            raise DataError(
                f"column {missing[0]!r} is missing from the input; the TRANSFORM reads "
                f"{', '.join(repr(c) for c in missing)} (as in the training data)"
            )
        with_label = all(c in present for c in self.label_inputs)
        items = [(n, e) for n, e in self.items if with_label or n != self.label]
        select = ", ".join(f"{e} AS {quote(n)}" for n, e in items)
        import duckdb

        con = sandboxed_connection()
        con.register(INPUT_TABLE, table)
        try:
            result: pa.Table = con.sql(f"SELECT {select} FROM {INPUT_TABLE}").to_arrow_table()
        except duckdb.Error as e:  # a value or type the expressions cannot take
            raise DataError(f"the TRANSFORM failed on the input rows: {e}") from e
        finally:
            con.unregister(INPUT_TABLE)
        return result

    # -- serialisation ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SQL_FORMAT,
            "version": SQL_FORMAT_VERSION,
            "items": [[n, e] for n, e in self.items],
            "input_columns": list(self.input_columns),
            "label": self.label,
            "label_inputs": list(self.label_inputs),
        }

    @classmethod
    def from_json(cls, body: Any, *, source: str = SQL_FILE) -> SqlSelect:
        """Read what :meth:`to_json` wrote, refusing any expression that is not a scalar
        expression over the input columns built from the allowlist (a ModelFormatError naming
        it)."""
        try:
            if not isinstance(body, dict) or body.get("format") != SQL_FORMAT:
                raise ValueError(f"not a {SQL_FORMAT} document")
            if int(body.get("version", 0)) > SQL_FORMAT_VERSION:
                raise ValueError(
                    f"format version {body['version']} is newer than this Kiln reads "
                    f"({SQL_FORMAT_VERSION}); upgrade Kiln"
                )
            inputs = [str(c) for c in body["input_columns"]]
            label = body.get("label")
            label_inputs = [str(c) for c in body.get("label_inputs", [])]
            raw_items = [(str(n), str(e)) for n, e in body["items"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ModelFormatError(f"{source}: not a valid Kiln SQL transform: {e}") from e
        items = []
        for name, expression in raw_items:
            allowed = set(inputs) | (set(label_inputs) if name == label else set())
            try:
                items.append((name, validate_expression(expression, allowed)))
            except ValueError as e:
                raise ModelFormatError(
                    f"{source}: output {name!r}: {e}; the file was not written by Kiln or was "
                    "edited — retrain the model"
                ) from None
        return cls(items, input_columns=inputs, label=label, label_inputs=label_inputs)


def validate_expression(expression: str, columns: set[str]) -> str:
    """``expression`` re-written by sqlglot (the text that will run) when it is one scalar
    DuckDB expression over ``columns`` built from the allowlist; ValueError naming the first
    thing that is not."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(expression, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise ValueError(f"the expression {expression!r} does not parse ({e})") from None
    lambda_params = {
        ident.name
        for node in tree.find_all(exp.Lambda)
        for ident in node.expressions
        if isinstance(ident, exp.Identifier)
    }
    lowered = {c.lower() for c in columns} | {p.lower() for p in lambda_params}
    for node in tree.walk():
        kind = type(node).__name__
        if isinstance(node, exp.Anonymous):
            if node.name.upper() not in ALLOWED_FUNCTIONS:
                raise ValueError(f"the function {node.name}() is not allowed in a transform")
            continue
        if kind not in ALLOWED_NODES:
            raise ValueError(f"{kind} ({node.sql('duckdb')[:80]!r}) is not allowed in a transform")
        if isinstance(node, exp.Column):
            if node.table:
                raise ValueError(f"a qualified column ({node.sql('duckdb')!r}) is not allowed")
            if node.name.lower() not in lowered:
                raise ValueError(f"the expression reads {node.name!r}, not an input column")
    return str(tree.sql("duckdb"))


# ------------------------------------------------------------------------------------------------
# SqlThenTransform


class SqlThenTransform(FittedTransform):
    """The TRANSFORM's :class:`SqlSelect`, then a fitted transform (BigQuery ML's automatic
    preprocessing fitted on the SELECT's output)."""

    def __init__(self, pre: SqlSelect, then: FittedTransform) -> None:
        super().__init__([], [], [])
        self.pre = pre
        self.then = then

    def __repr__(self) -> str:
        return f"SqlThenTransform({self.pre!r}, then={self.then!r})"

    @property
    def input_columns(self) -> list[str]:
        return list(self.pre.input_columns)

    def transform(self, table: pa.Table | pa.RecordBatch) -> FeatureMatrix:
        return self.then.transform(self.pre.apply(table))

    def one_hot_features(self, table: pa.Table | pa.RecordBatch) -> OneHotFeatures:
        return self.then.one_hot_features(self.pre.apply(table))

    def to_json(self) -> dict[str, Any]:
        return {**self.pre.to_json(), "then": self.then.to_json()}

    @classmethod
    def from_json(cls, body: dict[str, Any], *, source: str = "transform") -> SqlThenTransform:
        if not isinstance(body, dict) or not isinstance(body.get("then"), dict):
            raise ModelFormatError(f"{source}: a SQL transform without its 'then' transform")
        pre = SqlSelect.from_json(body, source=source)
        return cls(pre, FittedTransform.from_json(body["then"], source=source))

    def save(self, folder: Path | str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.then.save(folder / "then")
        (folder / SQL_FILE).write_text(json.dumps(self.pre.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path | str) -> SqlThenTransform:
        folder = Path(folder)
        try:
            body = json.loads((folder / SQL_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelFormatError(
                f"{folder / SQL_FILE}: cannot read the SQL transform ({e})"
            ) from e
        pre = SqlSelect.from_json(body, source=str(folder / SQL_FILE))
        return cls(pre, FittedTransform.load(folder / "then"))
