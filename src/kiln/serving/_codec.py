"""Requests to Arrow tables and Arrow tables to answers, checked against a model's signature.

A request becomes one Arrow column per signature column, built in one call each from the values
that the JSON decoder produced (no per-row dict or table): the types are checked first with
``set(map(type, values))``, a C loop, and only a request that fails it is walked row by row to
name the field, the row and the reason. JSON numbers are accepted for floating columns (integers
too), integers for integer columns (a float only when it is whole), ``true``/``false`` for
booleans and strings for strings; ``null`` only where the signature says the column is nullable.
``NaN`` and ``Infinity`` are not JSON: a body holding them is decoded by the slow path so that the
error can say where they are.

A request of a few rows (up to ``kiln.model``'s ``FEW_ROWS``) skips Arrow when it can:
:meth:`Codec.instances_columns` and :meth:`Codec.v2_columns` give its values as one Python list
per column for ``Model.predict_columns``, and :meth:`Codec.to_v2_columns` encodes that answer.
They accept only values that the Arrow path takes as they are; for anything else they answer
None and the request takes the Arrow path, which answers it or names what is wrong: the same
answers and the same errors either way.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from kiln.model._model import FEW_ROWS
from kiln.transform._rows import FloatColumns

__all__ = [
    "NOT_JSON",
    "Codec",
    "RequestError",
    "attach_binary",
    "decode_json",
    "encode_binary",
    "split_binary",
]

# Arrow type names (as a signature writes them) to the V2 protocol's datatypes
_V2_OF_ARROW = {
    "double": "FP64",
    "float": "FP32",
    "halffloat": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
    "string": "BYTES",
    "large_string": "BYTES",
}
_FLOATS = {"FP16", "FP32", "FP64"}
_INTS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}


class RequestError(Exception):
    """A request that the server refuses: its HTTP status and the message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _NotJSON:
    """A ``NaN``/``Infinity`` token found by the slow decoder (JSON has no such numbers)."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token


NOT_JSON = _NotJSON


def decode_json(body: bytes, loads: Callable[[bytes], Any]) -> Any:
    """The request body as JSON (``loads``: the fast decoder); 400 when it is not JSON."""
    if not body:
        raise RequestError(400, "the request has no body; send a JSON object")
    try:
        return loads(body)
    except ValueError as fast_error:
        try:  # NaN and Infinity: decoded here so that the error names the field and the row
            return json.loads(body, parse_constant=_NotJSON)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise RequestError(400, f"the request body is not valid JSON: {fast_error}") from None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, _NotJSON):
        return value.token
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"{value!r}"


@dataclass(frozen=True)
class _Column:
    name: str
    arrow: pa.DataType
    type_name: str
    v2: str  # the V2 datatype
    kind: str  # float, int, bool, string, other
    nullable: bool

    def convert(self, values: Sequence[Any], where: Callable[[int], str]) -> pa.Array:
        """``values`` as an Arrow array of this column's type, or a 400 naming the bad one."""
        types = set(map(type, values))
        allowed = _ALLOWED.get(self.kind)
        if allowed is not None and types <= allowed:
            try:
                if self.kind == "int" and float in types:
                    for i, v in enumerate(values):
                        if isinstance(v, float) and not v.is_integer():
                            raise RequestError(400, self._bad(where(i), v, "is not a whole number"))
                    values = [v if v is None else int(v) for v in values]
                if type(None) in types and not self.nullable:
                    i = list(values).index(None)
                    raise RequestError(400, self._bad(where(i), None, "is not allowed here"))
                return pa.array(values, type=self.arrow)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as e:
                raise RequestError(400, f"{where(0)}, field {self.name!r}: {e}") from None
        if allowed is None:  # a type with no fast path (dates, decimals...): Arrow checks it
            return self._generic(values, where)
        for i, v in enumerate(values):
            if type(v) not in allowed:
                raise RequestError(400, self._bad(where(i), v, self._expected()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _generic(self, values: Sequence[Any], where: Callable[[int], str]) -> pa.Array:
        for i, v in enumerate(values):
            if isinstance(v, _NotJSON | list | dict):
                raise RequestError(400, self._bad(where(i), v, self._expected()))
            if v is None and not self.nullable:
                raise RequestError(400, self._bad(where(i), v, "is not allowed here"))
        try:
            return pa.array(values).cast(self.arrow)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise RequestError(
                400, f"field {self.name!r}: values do not convert to {self.type_name}: {e}"
            ) from None

    def _expected(self) -> str:
        what = {
            "float": "a number",
            "int": "a whole number",
            "bool": "true or false",
            "string": "a string",
        }.get(self.kind, f"a value of type {self.type_name}")
        null = " or null" if self.nullable else ""
        return f"is not {what}{null} (the model's {self.type_name})"

    def _bad(self, where: str, value: Any, why: str) -> str:
        if isinstance(value, _NotJSON):
            why = "is not a JSON number; send null for a missing value"
        return f"{where}, field {self.name!r}: {_describe(value)} {why}"


_NONE = type(None)
_NUMBERS = {float, int}
_ALLOWED: dict[str, set[type]] = {
    "float": {float, int, _NONE},
    "int": {int, float, _NONE},
    "bool": {bool, _NONE},
    "string": {str, _NONE},
}


_FLOAT_ONLY = {float}
_EXACT_INT = 2**53  # Arrow refuses, or numpy rounds, an integer past it for a float64 column
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FEW_ALLOWED: dict[str, set[type]] = {
    "float": {float, int, _NONE},
    "int": {int, _NONE},
    "bool": {bool, _NONE},
    "string": {str, _NONE},
}
_DATATYPES = {
    "float": _FLOATS | _INTS,
    "int": _INTS | _FLOATS,
    "bool": {"BOOL"},
    "string": {"BYTES"},
    "other": set(),
}


def _few_type(t: pa.DataType) -> bool:
    return bool(
        t == pa.float64()
        or t == pa.int64()
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def _kind(t: pa.DataType) -> str:
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return "other"


def _arrow_type(name: str) -> pa.DataType:
    simple = {
        "double": pa.float64(),
        "float": pa.float32(),
        "halffloat": pa.float16(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "large_string": pa.large_string(),
        "date32[day]": pa.date32(),
        "date64[ms]": pa.date64(),
    }
    if name in simple:
        return simple[name]
    if name.startswith(("int", "uint")):
        return getattr(pa, name)()
    if name.startswith("dictionary<values=string"):
        return pa.string()  # sent as strings; the transform reads either
    if name.startswith("timestamp["):
        unit = name[len("timestamp[") :].split(",")[0].rstrip("]")
        return pa.timestamp(unit)
    return pa.string()


def _flatten(data: Any, *, where: str) -> list[Any]:
    """V2 tensor data, nested (row-major) or flat, as one flat list."""
    if not isinstance(data, list):
        raise RequestError(400, f"{where}: 'data' must be a list, not {_describe(data)}")
    if data and isinstance(data[0], list):
        flat: list[Any] = []
        for item in data:
            if not isinstance(item, list):
                raise RequestError(400, f"{where}: 'data' mixes lists and values")
            flat.extend(_flatten(item, where=where) if item and isinstance(item[0], list) else item)
        return flat
    return data


@dataclass
class _Output:
    name: str  # the V2 output tensor's name
    column: str  # the model output column it comes from
    field: str | None  # the list<struct>'s field, or None for a plain column
    datatype: str
    width: int | None  # values per row ([n, width]), None: one value per row ([n])


class Codec:
    """Converts requests for one model (its signature) to Arrow, and its answers to JSON."""

    def __init__(self, signature: Sequence[dict[str, Any]]) -> None:
        self.columns = [
            _Column(
                name=c["name"],
                arrow=(arrow := _arrow_type(str(c["type"]))),
                type_name=str(c["type"]),
                v2=_V2_OF_ARROW.get(str(arrow), "BYTES"),
                kind=_kind(arrow),
                nullable=bool(c.get("nullable", True)),
            )
            for c in signature
        ]
        self.names = [c.name for c in self.columns]
        self.by_name = {c.name: c for c in self.columns}
        self.outputs: list[_Output] = []
        self.schema = pa.schema([(c.name, c.arrow) for c in self.columns])
        # float64 columns: built together, through one NumPy matrix, when every value is a number
        self._doubles = [j for j, c in enumerate(self.columns) if c.arrow == pa.float64()]
        self._double_names = [self.names[j] for j in self._doubles]
        self._all_doubles = len(self._doubles) == len(self.columns)
        # the few-row path (instances_columns, v2_columns): for signatures of float64, int64, bool
        # and string columns only
        self.few_rows = all(c.kind in _FEW_ALLOWED and _few_type(c.arrow) for c in self.columns)
        self._doubles_nullable = all(self.columns[j].nullable for j in self._doubles)
        self._others = [c for c in self.columns if c.arrow != pa.float64()]
        self._row_values = operator.itemgetter(*self.names)  # (a tuple when 2+ columns)

    # ------------------------------------------------------------------ the fast path

    def _fill_doubles(self, arrays: list[pa.Array | None], values: list[Any], rows: int) -> None:
        """The float64 columns from ``values`` (row-major: each row's float64 features in
        signature order) when they are all numbers: one matrix, one Arrow array, a slice per
        column. Anything else (a null, a string, a bool) is left to the per-column check."""
        if not set(map(type, values)) <= _NUMBERS:
            return
        try:
            matrix = np.array(values, dtype=np.float64).reshape(rows, len(self._doubles))
        except (OverflowError, ValueError):
            return
        flat = pa.array(matrix.T.ravel())
        for k, j in enumerate(self._doubles):
            arrays[j] = flat.slice(k * rows, rows)

    # ------------------------------------------------------------------ warm-up and metadata

    def example(self) -> pa.Table:
        """One row built from the signature (zeros, false, empty strings): the warm-up input."""
        value = {"float": 0.0, "int": 0, "bool": False, "string": ""}
        return pa.table(
            {
                c.name: pa.array([value.get(c.kind)], type=c.arrow if c.kind != "other" else None)
                for c in self.columns
            }
        )

    def learn_outputs(self, answer: pa.Table) -> None:
        """The V2 outputs, from an answer of the model (the warm-up's)."""
        outputs = []
        for f in answer.schema:
            t = f.type
            if pa.types.is_list(t) and pa.types.is_struct(t.value_type):
                width = len(answer[f.name][0]) if answer.num_rows else None
                fields = [t.value_type.field(i) for i in range(t.value_type.num_fields)]
                # list<struct<key, value>>: the value (prob, distance) under the column's name,
                # the key (label, centroid id) under column_key, both [n, k]
                value, keys = fields[-1], fields[:-1]
                outputs.append(_Output(f.name, f.name, value.name, _v2(value.type), width))
                for k in keys:
                    outputs.append(
                        _Output(f"{f.name}_{k.name}", f.name, k.name, _v2(k.type), width)
                    )
            else:
                outputs.append(_Output(f.name, f.name, None, _v2(t), None))
        self.outputs = outputs

    def v2_metadata(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        inputs = [{"name": c.name, "datatype": c.v2, "shape": [-1, 1]} for c in self.columns]
        outputs = [
            {"name": o.name, "datatype": o.datatype, "shape": [-1, o.width or 1]}
            if o.width
            else {"name": o.name, "datatype": o.datatype, "shape": [-1]}
            for o in self.outputs
        ]
        return inputs, outputs

    # ------------------------------------------------------------------ Vertex AI / TF Serving

    def from_instances(self, instances: Any) -> pa.Table:
        """``instances``: a list of objects (by feature name) or lists (in signature order)."""
        if not isinstance(instances, list) or not instances:
            raise RequestError(
                400, "'instances' must be a non-empty list of objects or lists of feature values"
            )
        first = instances[0]
        rows = len(instances)
        arrays: list[pa.Array | None] = [None] * len(self.columns)
        if isinstance(first, dict):
            if not all(type(i) is dict for i in instances):
                self._bad_instance(instances, dict)
            if self._doubles:
                try:
                    fast = [i[n] for i in instances for n in self._double_names]
                except KeyError:
                    pass  # the per-column pass below names the missing feature
                else:
                    self._fill_doubles(arrays, fast, rows)
            for j, c in enumerate(self.columns):
                if arrays[j] is not None:
                    continue
                name = c.name
                try:
                    values = [i[name] for i in instances]
                except KeyError:
                    row = next(r for r, i in enumerate(instances) if name not in i)
                    raise RequestError(
                        400,
                        f"instance {row}: feature {name!r} ({c.type_name}) is missing; "
                        "send null where it is unknown",
                    ) from None
                arrays[j] = c.convert(values, _instance)
        elif isinstance(first, list):
            width = len(self.columns)
            for r, i in enumerate(instances):
                if type(i) is not list:
                    self._bad_instance(instances, list)
                if len(i) != width:
                    raise RequestError(
                        400,
                        f"instance {r} has {len(i)} values; the model takes {width} in this "
                        f"order: {', '.join(self.names)}",
                    )
            if self._all_doubles:
                self._fill_doubles(arrays, [v for i in instances for v in i], rows)
            elif self._doubles:
                fast = [i[j] for i in instances for j in self._doubles]
                self._fill_doubles(arrays, fast, rows)
            for j, c in enumerate(self.columns):
                if arrays[j] is None:
                    arrays[j] = c.convert([i[j] for i in instances], _instance)
        else:
            raise RequestError(
                400,
                f"instance 0 is {_describe(first)}; send an object of feature values or a list "
                "of them in signature order",
            )
        return pa.Table.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _bad_instance(instances: list[Any], want: type) -> None:
        row = next(r for r, i in enumerate(instances) if type(i) is not want)
        kind = "an object" if want is dict else "a list"
        raise RequestError(
            400, f"instance {row} is {_describe(instances[row])}; every instance must be {kind}"
        )

    # ------------------------------------------------------------------ the few-row path
    # A request of a few rows can skip Arrow: these give its values as one Python list per
    # signature column, when every value is one that the Arrow path takes as it is (a number
    # for a float64 column, an int for an int64 one, a bool, a string, null where allowed), and
    # None otherwise: the Arrow path then builds the table, or says what is wrong.

    def instances_columns(self, instances: Any) -> tuple[dict[str, list[Any]], int] | None:
        """``instances`` (as :meth:`from_instances` takes them) as columns, or None."""
        if not self.few_rows or type(instances) is not list or not 0 < len(instances) <= FEW_ROWS:
            return None
        first = instances[0]
        names, width = self.names, len(self.columns)
        if type(first) is dict:
            if not all(type(i) is dict for i in instances):
                return None
            try:  # row-major in one pass (a C itemgetter per row), then a (C) slice per column
                if width > 1:
                    flat = list(itertools.chain.from_iterable(map(self._row_values, instances)))
                else:
                    flat = [i[names[0]] for i in instances]
            except KeyError:
                return None
        elif type(first) is list:
            if not all(type(i) is list and len(i) == width for i in instances):
                return None
            flat = list(itertools.chain.from_iterable(instances))
        else:
            return None
        columns = {name: flat[j::width] for j, name in enumerate(names)}
        if self._all_doubles and set(map(type, flat)) == _FLOAT_ONLY:  # numbers, checked once
            return FloatColumns(columns), len(instances)
        return (columns, len(instances)) if self._accepts(columns, flat) else None

    def v2_columns(self, inputs: Any) -> tuple[dict[str, list[Any]], int] | None:
        """V2 ``inputs`` (as :meth:`from_v2` takes them) as columns, or None. A request whose
        structure is wrong raises the same :class:`RequestError` as ``from_v2``."""
        if not self.few_rows:
            return None
        tensors = self._v2_tensors(inputs)
        rows = tensors[0][1][0]
        if rows > FEW_ROWS:
            return None
        if self._is_matrix(tensors):
            _, shape, datatype, data = tensors[0]
            width = len(self.columns)
            if len(shape) != 2 or shape[1] != width or datatype == "BYTES":
                return None
            if not all(datatype in _DATATYPES[c.kind] for c in self.columns):
                return None
            columns = {name: data[j::width] for j, name in enumerate(self.names)}
        else:
            columns = {}
            for name, shape, datatype, data in tensors:
                c = self.by_name.get(name)
                if (
                    c is None
                    or name in columns
                    or shape[0] != rows
                    or len(shape) > 2
                    or (len(shape) == 2 and shape[1] != 1)
                    or datatype not in _DATATYPES[c.kind]
                ):
                    return None
                columns[name] = data
            if len(columns) != len(self.columns):
                return None
        return (columns, rows) if self._accepts(columns) else None

    def _accepts(self, columns: dict[str, list[Any]], every: list[Any] | None = None) -> bool:
        """Whether every value is one the Arrow path takes as it is (see above); ``every``: all
        the values in one list, when the caller has it."""
        if self._doubles:
            if every is not None and self._all_doubles:
                flat = every
            else:
                flat = list(
                    itertools.chain.from_iterable(map(columns.__getitem__, self._double_names))
                )
            types = set(map(type, flat))
            if types != _FLOAT_ONLY:
                if not types <= _FEW_ALLOWED["float"]:
                    return False
                if _NONE in types and not self._doubles_nullable:
                    return False
                if int in types and not all(
                    -_EXACT_INT <= v <= _EXACT_INT for v in flat if type(v) is int
                ):
                    return False
        for c in self._others:
            values = columns[c.name]
            types = set(map(type, values))
            if not types <= _FEW_ALLOWED[c.kind] or (_NONE in types and not c.nullable):
                return False
            if c.kind == "int" and not all(
                _INT64_MIN <= v <= _INT64_MAX for v in values if v is not None
            ):
                return False
        return True

    def to_v2_columns(
        self, answer: dict[str, list[Any]], rows: int, wanted: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """:meth:`to_v2` for an answer held as Python lists (``Model.predict_columns``)."""
        result = []
        for o in self._outputs(wanted):
            column = answer[o.column]
            if o.field is None:
                result.append(
                    {"name": o.name, "datatype": o.datatype, "shape": [rows], "data": column}
                )
                continue
            key = o.field
            flat = [s[key] for row in column for s in row]
            width = len(flat) // rows if rows else 0
            result.append(
                {"name": o.name, "datatype": o.datatype, "shape": [rows, width], "data": flat}
            )
        return result

    # ------------------------------------------------------------------ KServe V2

    def from_v2(self, inputs: Any) -> pa.Table:
        """V2 input tensors: one per feature ([n] or [n, 1]), or one [n, features] tensor."""
        tensors = self._v2_tensors(inputs)
        if self._is_matrix(tensors):
            return self._from_matrix(*tensors[0])
        return self._from_columns(tensors)

    def _is_matrix(self, tensors: list[tuple[str, list[int], str, list[Any]]]) -> bool:
        return len(tensors) == 1 and tensors[0][0] not in self.by_name and len(self.columns) > 1

    def _v2_tensors(self, inputs: Any) -> list[tuple[str, list[int], str, list[Any]]]:
        """The tensors' structure checked (names, shapes, datatypes are strings, sizes)."""
        if not isinstance(inputs, list) or not inputs:
            raise RequestError(400, "'inputs' must be a non-empty list of tensors")
        tensors = []
        for t, tensor in enumerate(inputs):
            if not isinstance(tensor, dict):
                raise RequestError(400, f"inputs[{t}] is {_describe(tensor)}, not a tensor object")
            for key in ("name", "shape", "datatype", "data"):
                if key not in tensor:
                    raise RequestError(400, f"inputs[{t}] has no {key!r}")
            name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
            if not isinstance(name, str):
                raise RequestError(400, f"inputs[{t}]: 'name' must be a string")
            if (
                not isinstance(shape, list)
                or not shape
                or not all(type(d) is int and d >= 0 for d in shape)
            ):
                raise RequestError(
                    400, f"input {name!r}: 'shape' must be a list of sizes, e.g. [2, 1]"
                )
            if not isinstance(datatype, str):
                raise RequestError(400, f"input {name!r}: 'datatype' must be a string")
            data = _flatten(tensor["data"], where=f"input {name!r}")
            expected = math.prod(shape)
            if len(data) != expected:
                raise RequestError(
                    400,
                    f"input {name!r}: shape {shape} holds {expected} values but 'data' has "
                    f"{len(data)}",
                )
            tensors.append((name, shape, datatype, data))
        if tensors[0][1][0] == 0:
            raise RequestError(400, f"input {tensors[0][0]!r} has no rows; send one or more")
        return tensors

    def _from_matrix(self, name: str, shape: list[int], datatype: str, data: list[Any]) -> pa.Table:
        width = len(self.columns)
        if len(shape) != 2 or shape[1] != width:
            raise RequestError(
                400,
                f"input {name!r} is not one of the model's inputs ({', '.join(self.names)}); "
                f"as one tensor of every feature its shape must be [rows, {width}], not {shape}",
            )
        arrays: list[pa.Array | None] = [None] * width
        if datatype != "BYTES":
            for c in self.columns:
                self._check_datatype(c, datatype, name)
        if self._all_doubles:
            self._fill_doubles(arrays, data, shape[0])
        for j, c in enumerate(self.columns):
            if arrays[j] is None:
                arrays[j] = c.convert(data[j::width], _row)
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _from_columns(self, tensors: list[tuple[str, list[int], str, list[Any]]]) -> pa.Table:
        given: dict[str, list[Any]] = {}
        rows: int | None = None
        for name, shape, datatype, data in tensors:
            c = self.by_name.get(name)
            if c is None:
                raise RequestError(
                    400,
                    f"input {name!r} is not one of the model's inputs: {', '.join(self.names)}",
                )
            if name in given:
                raise RequestError(400, f"input {name!r} is given twice")
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise RequestError(400, f"input {name!r}: shape {shape} is not [rows] or [rows, 1]")
            if rows is not None and shape[0] != rows:
                raise RequestError(
                    400, f"input {name!r} has {shape[0]} rows; the inputs before it have {rows}"
                )
            rows = shape[0]
            self._check_datatype(c, datatype, name)
            given[name] = data

        missing = [c.name for c in self.columns if c.name not in given]
        if missing:
            raise RequestError(
                400,
                f"input {missing[0]!r} ({self.by_name[missing[0]].v2}) is missing"
                + (
                    f" (and {len(missing) - 1} more: {', '.join(missing[1:])})"
                    if missing[1:]
                    else ""
                )
                + "; send one tensor per feature, or one [rows, features] tensor",
            )
        assert rows is not None
        arrays: list[pa.Array | None] = [None] * len(self.columns)
        if self._doubles:  # the float64 columns through one matrix, as the values come
            fast = [v for n in self._double_names for v in given[n]]
            if set(map(type, fast)) <= _NUMBERS:
                try:
                    flat = pa.array(np.array(fast, dtype=np.float64))
                except (OverflowError, ValueError):
                    pass
                else:
                    for k, j in enumerate(self._doubles):
                        arrays[j] = flat.slice(k * rows, rows)
        for j, c in enumerate(self.columns):
            if arrays[j] is None:
                arrays[j] = c.convert(given[c.name], _row)
        return pa.Table.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _check_datatype(c: _Column, datatype: str, name: str) -> None:
        ok = {
            "float": _FLOATS | _INTS,
            "int": _INTS | _FLOATS,
            "bool": {"BOOL"},
            "string": {"BYTES"},
        }.get(c.kind)
        if ok is not None and datatype not in ok:
            raise RequestError(
                400,
                f"input {name!r}: datatype {datatype!r} does not match the model's "
                f"{c.type_name} (send {c.v2})",
            )

    def _outputs(self, wanted: Sequence[str] | None) -> list[_Output]:
        outputs = self.outputs
        if wanted is not None:
            known = {o.name: o for o in outputs}
            for w in wanted:
                if w not in known:
                    raise RequestError(
                        400,
                        f"output {w!r} is not one of the model's outputs: " + ", ".join(known),
                    )
            outputs = [known[w] for w in wanted]
        return outputs

    def to_v2(self, answer: pa.Table, wanted: Sequence[str] | None) -> list[dict[str, Any]]:
        outputs = self._outputs(wanted)
        n = answer.num_rows
        result = []
        for o in outputs:
            column = answer[o.column]
            if o.field is None:
                result.append(
                    {
                        "name": o.name,
                        "datatype": o.datatype,
                        "shape": [n],
                        "data": column.to_pylist(),
                    }
                )
                continue
            flat = column.combine_chunks().flatten().field(o.field)
            width = len(flat) // n if n else 0
            result.append(
                {
                    "name": o.name,
                    "datatype": o.datatype,
                    "shape": [n, width],
                    "data": flat.to_pylist(),
                }
            )
        return result


def _v2(t: pa.DataType) -> str:
    return _V2_OF_ARROW.get(str(t), "BYTES")


def _instance(row: int) -> str:
    return f"instance {row}"


def _row(row: int) -> str:
    return f"row {row}"


# ---------------------------------------------------------------------------------- binary tensors
# The V2 binary tensor data extension (what Triton's clients send by default): the body is the
# JSON request (its length in the Inference-Header-Content-Length header) followed by each
# tensor's raw bytes, in the order of the inputs that carry parameters.binary_data_size.
# Numbers are little-endian; BYTES are each a 4-byte little-endian length and the bytes.

_NUMPY_OF_V2 = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def split_binary(body: bytes, header_length: bytes) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a request with binary tensors."""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise RequestError(
            400,
            f"Inference-Header-Content-Length {header_length.decode(errors='replace')!r} is not "
            f"a length within the body ({len(body)} bytes)",
        )
    n = int(header_length)
    return body[:n], body[n:]


def attach_binary(inputs: Any, binary: bytes) -> None:
    """Give each input that has ``parameters.binary_data_size`` its ``data`` from ``binary``."""
    if not isinstance(inputs, list):
        return  # from_v2 says what is wrong with it
    at = 0
    for t, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            continue
        parameters = tensor.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        name = tensor.get("name", f"inputs[{t}]")
        if type(size) is not int or size < 0 or at + size > len(binary):
            raise RequestError(
                400, f"input {name!r}: binary_data_size {size!r} runs past the body's binary part"
            )
        tensor["data"] = _decode_binary(str(tensor.get("datatype")), binary[at : at + size], name)
        at += size
    if at != len(binary):
        raise RequestError(
            400,
            f"the body has {len(binary) - at} binary bytes that no input's binary_data_size "
            "accounts for",
        )


def _decode_binary(datatype: str, raw: bytes, name: str) -> list[Any]:
    if datatype == "BYTES":
        out: list[Any] = []
        at = 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise RequestError(400, f"input {name!r}: a BYTES element's length is cut short")
            size = int.from_bytes(raw[at : at + 4], "little")
            at += 4
            if at + size > len(raw):
                raise RequestError(400, f"input {name!r}: a BYTES element runs past its data")
            try:
                out.append(raw[at : at + size].decode())
            except UnicodeDecodeError:
                raise RequestError(
                    400, f"input {name!r}: element {len(out)} is not UTF-8 text"
                ) from None
            at += size
        return out
    dtype = _NUMPY_OF_V2.get(datatype)
    if dtype is None:
        raise RequestError(400, f"input {name!r}: datatype {datatype!r} is not a V2 datatype")
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise RequestError(
            400, f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} values"
        )
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def encode_binary(tensors: list[dict[str, Any]]) -> bytes:
    """Replace each output tensor's ``data`` by ``parameters.binary_data_size``; the raw bytes."""
    parts = []
    for tensor in tensors:
        data = tensor.pop("data")
        if tensor["datatype"] == "BYTES":
            raw = b"".join(
                len(b).to_bytes(4, "little") + b
                for b in (str(v).encode() if v is not None else b"" for v in data)
            )
        else:
            dtype = _NUMPY_OF_V2.get(tensor["datatype"], "<f8")
            raw = np.asarray([np.nan if v is None else v for v in data], dtype=dtype).tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        parts.append(raw)
    return b"".join(parts)
