"""BigQuery ML statements, parsed: ``CREATE MODEL``, ``DROP MODEL``, and every other statement as a
query whose ``ML.<NAME>(MODEL ...)`` table functions are :class:`MLCall` nodes.

sqlglot's BigQuery dialect does most of the work. It knows ``ML.PREDICT`` but not the other ``ML.*``
table functions, so :class:`KilnBigQuery` extends its parser: any ``ML.<NAME>(MODEL m, ...)`` in a
FROM or JOIN parses into one generic :class:`MLCall` (the engine decides which names exist), and a
FROM naming a file (``FROM 'penguins.csv'``) keeps the path whole instead of splitting it at dots.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import ParseError, TokenError
from sqlglot.expressions.datatypes import DType
from sqlglot.generator import Generator
from sqlglot.generators.bigquery import BigQueryGenerator
from sqlglot.parsers.bigquery import BigQueryParser
from sqlglot.tokenizer_core import Token, TokenType

from kiln.errors import SqlError
from kiln.sql._model import HParamCandidates, HParamRange

__all__ = [
    "CreateModel",
    "DropModel",
    "KilnBigQuery",
    "MLCall",
    "ModelName",
    "Query",
    "Statement",
    "literal_value",
    "ml_calls",
    "ml_extra",
    "ml_model",
    "ml_name",
    "ml_settings",
    "parse_script",
]

# A FROM target that names a file rather than a table: a URL, or a name with a data file's suffix.
_FILE = re.compile(
    r"^[a-z][a-z0-9+]*://|\.(csv|tsv|txt|parquet|json|jsonl|ndjson)(\.(gz|zst))?$", re.I
)
FILE_META = "kiln_file"  # Table.meta key holding the path of a FROM 'file.csv'
_MAX_ARRAY = 100_000  # GENERATE_ARRAY in a setting: a threshold list, not a data set


@dataclass(frozen=True)
class ModelName:
    """A model's name as written: ``project.dataset.model``, ``dataset.model`` or ``model``."""

    dataset: str | None
    name: str
    project: str | None = None

    @property
    def qualified(self) -> str:
        """``dataset.model`` (the registry name), or ``model`` when no dataset is given."""
        return f"{self.dataset}.{self.name}" if self.dataset else self.name

    @classmethod
    def of(cls, table: exp.Expr) -> ModelName:
        if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
            raise SqlError(f"Expected a model name but got `{table.sql('bigquery')}`")
        return cls(dataset=table.db or None, name=table.name, project=table.catalog or None)


@dataclass
class CreateModel:
    model: ModelName
    replace: bool
    if_not_exists: bool
    options: dict[str, Any]
    transform: list[exp.Expr] | None
    query: exp.Expr | None
    text: str


@dataclass
class DropModel:
    model: ModelName
    if_exists: bool
    text: str


@dataclass
class Query:
    """Any statement other than CREATE/DROP MODEL, as a BigQuery AST."""

    expression: exp.Expr
    text: str


Statement = CreateModel | DropModel | Query


class MLCall(exp.Expression):
    """``ML.<NAME>(MODEL m [, (query) | TABLE t] [, STRUCT(...)] [, other args])``.

    It sits as the ``this`` of an :class:`exp.Table` (which carries the alias), like a table
    function. ``extra`` holds the arguments that are neither the input nor the settings struct.
    """

    arg_types: ClassVar[dict[str, bool]] = {
        "this": True,
        "model": True,
        "input": False,
        "settings": False,
        "extra": False,
    }

    @property
    def name(self) -> str:
        return str(self.this.name).upper()


def _mlcall_sql(self: Generator, e: MLCall) -> str:
    args = [f"MODEL {self.sql(e, 'model')}"]
    source = e.args.get("input")
    source_sql = (
        ([f"TABLE {self.sql(source)}"] if isinstance(source, exp.Table) else [self.sql(source)])
        if source is not None
        else []
    )
    settings = [self.sql(e, "settings")] if e.args.get("settings") is not None else []
    if e.meta.get("settings_first"):
        args += settings + source_sql
    else:
        args += source_sql + settings
    args += [self.sql(x) for x in e.args.get("extra") or []]
    return f"ML.{e.name}({', '.join(args)})"


class _Parser(BigQueryParser):
    def _parse_table_part(self, schema: bool = False) -> exp.Expr | None:
        if not schema and self._at_ml_call():
            return self._parse_ml_call()
        return super()._parse_table_part(schema=schema)

    def _parse_table_parts(
        self,
        schema: bool = False,
        is_db_reference: bool = False,
        wildcard: bool = False,
        fast: bool = False,
    ) -> exp.Table | exp.Dot | None:
        token = self._curr
        if (
            not schema
            and not is_db_reference
            and token is not None
            and token.token_type in (TokenType.STRING, TokenType.IDENTIFIER)
            and _FILE.search(token.text)
        ):
            self._advance()
            table = exp.Table(this=exp.Identifier(this=token.text, quoted=True))
            table.meta[FILE_META] = token.text
            return table
        return super()._parse_table_parts(
            schema=schema, is_db_reference=is_db_reference, wildcard=wildcard, fast=fast
        )

    def _at_ml_call(self) -> bool:
        i = self._index
        tokens = self._tokens
        return (
            i + 4 < len(tokens)
            and tokens[i].text.upper() == "ML"
            and tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 3].token_type == TokenType.L_PAREN
            and tokens[i + 4].text.upper() == "MODEL"
        )

    def _parse_ml_call(self) -> MLCall:
        self._advance(2)  # ML .
        name = exp.Var(this=self._curr.text.upper())
        self._advance(3)  # NAME ( MODEL
        model = super()._parse_table_parts()
        call = MLCall(this=name, model=model)
        extra: list[exp.Expr] = []
        while self._match(TokenType.COMMA):
            arg: exp.Expr | None
            if self._match(TokenType.TABLE):
                arg = super()._parse_table_parts()
            else:
                arg = self._parse_assignment()
            if arg is None:
                self.raise_error(f"Expected an argument of ML.{name.name}")
            elif isinstance(arg, exp.Struct) and call.args.get("settings") is None:
                call.set("settings", arg)
                if call.args.get("input") is None:
                    call.meta["settings_first"] = True
            elif isinstance(arg, exp.Subquery | exp.Table) and call.args.get("input") is None:
                call.set("input", arg)
            else:
                extra.append(arg)
        if extra:
            call.set("extra", extra)
        self._match_r_paren(call)
        return call


class _Generator(BigQueryGenerator):
    TRANSFORMS: ClassVar[dict[type[exp.Expr], Any]] = {
        **BigQueryGenerator.TRANSFORMS,
        MLCall: _mlcall_sql,
    }


class KilnBigQuery(BigQuery):
    """BigQuery, plus every ``ML.<NAME>(MODEL ...)`` table function and FROM a file path."""

    Parser = _Parser
    Generator = _Generator


# ------------------------------------------------------------------------------------- scripts


def parse_script(text: str) -> list[Statement]:
    """Every statement of ``text`` (split at ``;``), parsed; empty statements are skipped."""
    dialect = KilnBigQuery()
    try:
        tokens = dialect.tokenize(text)
    except TokenError as e:
        raise _token_error(text) from e
    statements: list[Statement] = []
    for chunk in _split(tokens):
        source = text[chunk[0].start : chunk[-1].end + 1]
        try:
            expressions = dialect.parser().parse(chunk, sql=text)
        except ParseError as e:
            raise _syntax_error(text, e) from e
        for expression in expressions:
            if expression is not None:
                statements.append(_statement(expression, source))
    return statements


def _split(tokens: list[Token]) -> Iterator[list[Token]]:
    chunk: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(token)
    if chunk:
        yield chunk


def _statement(expression: exp.Expr, text: str) -> Statement:
    kind = str(expression.args.get("kind") or "").upper()
    if isinstance(expression, exp.Create) and kind == "MODEL":
        return _create_model(expression, text)
    if isinstance(expression, exp.Drop) and kind == "MODEL":
        tables = expression.args.get("tables") or [expression.this]
        if len(tables) != 1:
            raise SqlError(f"DROP MODEL takes one model; split `{text}` into one per model")
        return DropModel(
            model=ModelName.of(tables[0]), if_exists=bool(expression.args.get("exists")), text=text
        )
    return Query(expression=expression, text=text)


def _create_model(expression: exp.Create, text: str) -> CreateModel:
    model = ModelName.of(expression.this)
    options: dict[str, Any] = {}
    transform: list[exp.Expr] | None = None
    properties = expression.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.TransformModelProperty):
            transform = list(prop.expressions)
        elif isinstance(prop, exp.Property):
            key = prop.name.lower()
            if key in options:
                raise SqlError(
                    f"Duplicate option {key} in OPTIONS of CREATE MODEL {model.qualified}; "
                    "give each option once"
                )
            try:
                options[key] = literal_value(prop.args["value"])
            except SqlError as e:
                raise SqlError(f"OPTIONS({key}) of CREATE MODEL {model.qualified}: {e}") from e
    return CreateModel(
        model=model,
        replace=bool(expression.args.get("replace")),
        if_not_exists=bool(expression.args.get("exists")),
        options=options,
        transform=transform,
        query=expression.expression,
        text=text,
    )


def _syntax_error(text: str, error: ParseError) -> SqlError:
    info = error.errors[0] if error.errors else {}
    line = int(info.get("line") or 1)
    end_col = int(info.get("col") or 1)  # sqlglot points at the offending token's last character
    highlight = str(info.get("highlight") or "")
    col = max(1, end_col - len(highlight) + 1) if "\n" not in highlight else end_col
    description = _plain(str(info.get("description") or error).split(". Line ")[0])
    near = f" near `{highlight}`" if highlight else ""
    return SqlError(
        f"Syntax error: {description}{near} at [{line}:{col}]\n{_excerpt(text, line, col)}"
    )


def _plain(description: str) -> str:
    """sqlglot's wording without its internals (class names, token reprs)."""
    description = re.sub(
        r"Required keyword: '\w+' missing for <class '[\w.]+\.(\w+)'>",
        lambda m: f"Incomplete {m.group(1).upper()} expression",
        description,
    )
    description = re.sub(r"<Token token_type: [^,]+, text: (.*?), line: .*?>", r"`\1`", description)
    return description.replace("Invalid expression / Unexpected token", "Unexpected token")


def _token_error(text: str) -> SqlError:
    offset = _unclosed(text)
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    what = "comment" if text.startswith("/*", offset) else "string literal or quoted name"
    return SqlError(
        f"Syntax error: Unclosed {what} at [{line}:{col}]; close it or escape the quote\n"
        f"{_excerpt(text, line, col)}"
    )


def _unclosed(text: str) -> int:
    """Where the quote or block comment that never closes starts (the end when none is found)."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith(("--", "#"), i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return i
            i = end + 2
        elif text[i] in "'\"`":
            quote = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else text[i]
            raw = i > 0 and text[i - 1] in "rR"
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                j += 2 if text[j] == "\\" and not raw else 1
            if j >= n:
                return i
            i = j + len(quote)
        else:
            i += 1
    return n


def _excerpt(text: str, line: int, col: int) -> str:
    lines = text.splitlines() or [""]
    source = lines[min(line, len(lines)) - 1]
    return f"  {source}\n  {' ' * (col - 1)}^"


# ------------------------------------------------------------------------------ ML.* calls


def ml_calls(expression: exp.Expr) -> list[MLCall]:
    """Every ``ML.*`` call in ``expression``, innermost (deepest) first."""
    calls = [(node.depth, node) for node in expression.find_all(MLCall)]
    return [call for _, call in sorted(calls, key=lambda pair: -pair[0])]


def ml_name(call: MLCall) -> str:
    """The function's name in upper case: ``"PREDICT"`` for ``ML.PREDICT``."""
    return call.name


def ml_model(call: MLCall) -> ModelName:
    return ModelName.of(call.args["model"])


def ml_settings(call: MLCall) -> dict[str, Any]:
    """``STRUCT(0.5 AS threshold)`` → ``{"threshold": 0.5}`` (keys lower-cased); ``{}`` if none."""
    struct = call.args.get("settings")
    if struct is None:
        return {}
    settings: dict[str, Any] = {}
    for field in struct.expressions:
        if not isinstance(field, exp.PropertyEQ | exp.Alias):
            raise SqlError(
                f"ML.{call.name}: each field of its STRUCT needs a name, as in "
                f"STRUCT(0.5 AS threshold); got `{field.sql('bigquery')}`"
            )
        key = (field.alias if isinstance(field, exp.Alias) else field.name).lower()
        value = field.this if isinstance(field, exp.Alias) else field.expression
        try:
            settings[key] = literal_value(value)
        except SqlError as e:
            raise SqlError(f"ML.{call.name}: setting {key}: {e}") from e
    return settings


def ml_extra(call: MLCall) -> list[Any]:
    """The Python values of the arguments that are neither the input nor the settings."""
    values = []
    for arg in call.args.get("extra") or []:
        try:
            values.append(literal_value(arg))
        except SqlError as e:
            raise SqlError(f"ML.{call.name}: {e}") from e
    return values


# -------------------------------------------------------------------------------- literals

_DATE_TYPES: dict[DType, Callable[[str], Any]] = {
    exp.DataType.Type.DATE: datetime.date.fromisoformat,
    exp.DataType.Type.DATETIME: datetime.datetime.fromisoformat,
    exp.DataType.Type.TIMESTAMP: datetime.datetime.fromisoformat,
    exp.DataType.Type.TIMESTAMPTZ: datetime.datetime.fromisoformat,
}


def literal_value(node: exp.Expr) -> Any:
    """The Python value of a constant: numbers, strings, booleans, NULL, arrays (list), structs
    (dict when every field is named, else tuple), ``(a, b)`` (tuple), ``-x``, typed date literals,
    ``GENERATE_ARRAY`` of constants, ``HPARAM_RANGE`` and ``HPARAM_CANDIDATES``."""
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else _number(node.this)
    if isinstance(node, exp.RawString):
        return str(node.this)
    if isinstance(node, exp.ByteString):
        return str(node.this).encode()
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        value = literal_value(node.this)
        if isinstance(value, int | float):
            return -value
    elif isinstance(node, exp.Paren):
        return literal_value(node.this)
    elif isinstance(node, exp.Array):
        return [literal_value(e) for e in node.expressions]
    elif isinstance(node, exp.Tuple):
        return tuple(literal_value(e) for e in node.expressions)
    elif isinstance(node, exp.Struct):
        return _struct(node)
    elif isinstance(node, exp.Cast) and isinstance(node.this, exp.Array):  # ARRAY<INT64>[...]
        return literal_value(node.this)
    elif isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        convert = _DATE_TYPES.get(node.to.this)
        if convert is not None:
            try:
                return convert(node.this.this)
            except ValueError as e:
                raise SqlError(
                    f"Invalid {node.to.sql('bigquery')} literal `{node.this.this}`"
                ) from e
        if node.to.is_type(*exp.DataType.NUMERIC_TYPES):
            return literal_value(node.this) if not node.this.is_string else _number(node.this.this)
    elif isinstance(node, exp.GenerateSeries):
        return _generate_array(node)
    elif isinstance(node, exp.Anonymous):
        name = str(node.this).upper()
        args = [literal_value(a) for a in node.expressions]
        if name == "HPARAM_RANGE":
            if len(args) != 2 or not all(isinstance(a, int | float) for a in args):
                raise SqlError(
                    f"HPARAM_RANGE takes two numbers (low, high): `{node.sql('bigquery')}`"
                )
            return HParamRange(low=args[0], high=args[1])
        if name == "HPARAM_CANDIDATES":
            if len(args) != 1 or not isinstance(args[0], list):
                raise SqlError(
                    f"HPARAM_CANDIDATES takes one array, as in HPARAM_CANDIDATES([1, 2]): "
                    f"`{node.sql('bigquery')}`"
                )
            return HParamCandidates(values=tuple(args[0]))
    raise SqlError(f"Expected a constant value but got `{node.sql('bigquery')}`{_where(node)}")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _struct(node: exp.Struct) -> dict[str, Any] | tuple[Any, ...]:
    named: dict[str, Any] = {}
    values: list[Any] = []
    for field in node.expressions:
        if isinstance(field, exp.PropertyEQ):
            named[field.name] = literal_value(field.expression)
            values.append(named[field.name])
        elif isinstance(field, exp.Alias):
            named[field.alias] = literal_value(field.this)
            values.append(named[field.alias])
        else:
            values.append(literal_value(field))
    return named if len(named) == len(values) and named else tuple(values)


def _generate_array(node: exp.GenerateSeries) -> list[Any]:
    """``GENERATE_ARRAY(start, end[, step])`` exactly as BigQuery lists it (decimal steps)."""
    bounds = [node.args.get("start"), node.args.get("end"), node.args.get("step")]
    start, end, step = (literal_value(b) if b is not None else 1 for b in bounds)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, end, step)):
        raise SqlError(f"GENERATE_ARRAY takes numbers: `{node.sql('bigquery')}`")
    if step == 0:
        raise SqlError(f"GENERATE_ARRAY: the step cannot be 0 in `{node.sql('bigquery')}`")
    d_start, d_end, d_step = (Decimal(str(v)) for v in (start, end, step))
    count = int((d_end - d_start) / d_step) + 1 if (d_end - d_start) * d_step >= 0 else 0
    if count > _MAX_ARRAY:
        raise SqlError(f"GENERATE_ARRAY makes {count} values, more than {_MAX_ARRAY}: lower it")
    is_int = all(isinstance(v, int) for v in (start, end, step))
    values = [d_start + i * d_step for i in range(count)]
    return [int(v) for v in values] if is_int else [float(v) for v in values]


def _where(node: exp.Expr) -> str:
    """`` at [line:col]`` of the node's first token, when the parser recorded it."""
    for part in node.walk():
        meta = part.meta
        if meta.get("line") and meta.get("col"):
            col = int(meta["col"]) - (int(meta.get("end", 0)) - int(meta.get("start", 0)))
            return f" at [{meta['line']}:{max(col, 1)}]"
    return ""
