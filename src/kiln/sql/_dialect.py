"""A BigQuery query, rewritten for DuckDB.

sqlglot transpiles most of BigQuery to DuckDB correctly. Where it does not, :func:`to_duckdb`
rewrites the BigQuery AST first, so that the query returns what BigQuery would:

- names: ``project.dataset.table`` → ``"dataset"."table"`` (a BigQuery dataset is a DuckDB schema);
  the project is kept only when it names an attached DuckDB database;
- ``FROM 'penguins.csv'`` (or any data file's path) → ``read_csv_auto('penguins.csv')`` and friends;
- ``EXTRACT``: DAYOFWEEK counts 1 = Sunday (DuckDB: 0), WEEK and WEEK(<day>) count weeks starting
  on that day from week 0 (DuckDB: ISO weeks), ISOWEEK, MILLISECOND and MICROSECOND (DuckDB counts
  the seconds in), and DATE/TIME/DATETIME parts;
- ``UNNEST(...) WITH OFFSET`` counts from 0 (DuckDB's ORDINALITY counts from 1);
- ``GENERATE_ARRAY`` over decimals, ``DATE_ADD``/``DATE_SUB`` returning a DATE, ``FORMAT``
  (printf-style), ``IEEE_DIVIDE``, ``SAFE.<function>`` and ``FARM_FINGERPRINT`` (a 64-bit hash,
  stable, though not Google's values); ``NUMERIC`` is DECIMAL(38, 9) as in BigQuery (DuckDB's
  bare DECIMAL keeps 3 decimals).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.expressions.datatypes import DType

from kiln.errors import SqlError
from kiln.sql._parse import FILE_META, MLCall, ml_calls

__all__ = ["table_references", "to_duckdb"]

_WEEKDAYS = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]
# Warnings sqlglot gives that do not change results here: the warehouse runs in UTC, as BigQuery.
_BENIGN = ("EXTRACT from TIMESTAMPTZ",)
_EXTRACT_CASTS = {"DATE": "DATE", "TIME": "TIME", "DATETIME": "TIMESTAMP"}


def to_duckdb(expression: exp.Expr, *, catalogs: Collection[str] = ()) -> str:
    """DuckDB's SQL for a BigQuery statement (``ML.*`` calls must have been replaced first)."""
    calls = ml_calls(expression)
    if calls:
        raise SqlError(
            f"ML.{calls[-1].name} cannot run inside DuckDB; compute the ML.* calls of a query "
            "before transpiling it"
        )
    rewritten = expression.copy()
    counter = iter(range(1_000_000))
    # Children before parents, so that a rewritten node's arguments are rewritten too.
    for node in reversed(list(rewritten.walk(bfs=False))):
        new = _rewrite(node, set(catalogs), counter)
        if new is not node:
            if node is rewritten:
                rewritten = new
            else:
                node.replace(new)
    generator = Dialect.get_or_raise("duckdb").generator(
        unsupported_level=sqlglot.ErrorLevel.IGNORE
    )
    sql = generator.generate(rewritten, copy=False)
    problems = [m for m in generator.unsupported_messages if not m.startswith(_BENIGN)]
    if problems:
        raise SqlError(f"Not supported on DuckDB: {'; '.join(problems)}; rewrite that part")
    return sql


def table_references(expression: exp.Expr) -> list[str]:
    """The tables a statement reads, as ``dataset.table`` (or ``table``), in order, once each.

    CTE names, files, ``ML.*`` calls, table functions and the statement's own target (of CREATE,
    INSERT, DROP) are left out.
    """
    ctes = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    target = expression.this if isinstance(expression, exp.Create | exp.Insert) else None
    if isinstance(target, exp.Schema):
        target = target.this
    if isinstance(expression, exp.Drop):
        return []
    names: list[str] = []
    tables = sorted(expression.find_all(exp.Table), key=_position)
    for table in tables:
        if table is target or FILE_META in table.meta or not isinstance(table.this, exp.Identifier):
            continue
        if isinstance(table.parent, MLCall) and table.arg_key == "model":
            continue
        if not table.db and table.name in ctes:
            continue
        name = f"{table.db}.{table.name}" if table.db else table.name
        if name not in names:
            names.append(name)
    return names


def _position(table: exp.Table) -> int:
    """Where the table's name starts in the source (tables built in code come last)."""
    start = table.this.meta.get("start") if isinstance(table.this, exp.Identifier) else None
    return int(start) if start is not None else 1 << 62


# ----------------------------------------------------------------------------- rewrites


def _rewrite(node: exp.Expr, catalogs: set[str], counter: object) -> exp.Expr:
    if isinstance(node, exp.Table):
        return _table(node, catalogs)
    if isinstance(node, exp.Extract):
        return _extract(node)
    if isinstance(node, exp.DataType) and node.this == DType.DECIMAL and not node.expressions:
        return exp.DataType.build("DECIMAL(38, 9)", dialect="duckdb")  # BigQuery's NUMERIC
    if isinstance(node, exp.Unnest) and node.args.get("offset"):
        return _unnest_with_offset(node, counter)
    if isinstance(node, exp.GenerateSeries):
        return _generate_array(node)
    if isinstance(node, exp.DateAdd | exp.DateSub):
        return exp.cast(node, exp.DataType.Type.DATE)
    if isinstance(node, exp.TimeToStr | exp.StrToTime):
        return _time_format(node)
    if isinstance(node, exp.Format):
        return exp.Anonymous(this="PRINTF", expressions=[node.this, *node.expressions])
    if isinstance(node, exp.SafeFunc):
        return exp.Anonymous(this="TRY", expressions=[node.this])
    if isinstance(node, exp.FarmFingerprint):
        return _template(
            "CAST(CAST(HASH(__x) AS HUGEINT) - 9223372036854775808 AS BIGINT)",
            __x=node.expressions[0]
            if len(node.expressions) == 1
            else exp.Tuple(expressions=node.expressions),
        )
    if isinstance(node, exp.Anonymous) and str(node.this).upper() == "IEEE_DIVIDE":
        a, b = node.expressions
        return exp.Div(this=exp.cast(a, exp.DataType.Type.DOUBLE), expression=b)
    return node


def _table(table: exp.Table, catalogs: set[str]) -> exp.Expr:
    path = table.meta.get(FILE_META)
    if path is not None:
        return _file(table, str(path))
    catalog = table.args.get("catalog")
    if catalog is not None and catalog.name not in catalogs:
        table.set("catalog", None)
    return table


def _file(table: exp.Table, path: str) -> exp.Table:
    """``FROM 'data/x.csv'`` → ``FROM read_csv_auto('data/x.csv') AS x``."""
    lower = path.lower().removesuffix(".gz").removesuffix(".zst")
    if lower.endswith(".parquet"):
        reader = "READ_PARQUET"
    elif lower.endswith((".json", ".jsonl", ".ndjson")):
        reader = "READ_JSON_AUTO"
    else:
        reader = "READ_CSV_AUTO"
    read = exp.Table(this=exp.Anonymous(this=reader, expressions=[exp.Literal.string(path)]))
    alias = table.args.get("alias")
    if alias is None:
        stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
        if stem.isidentifier():
            alias = exp.TableAlias(this=exp.to_identifier(stem))
    read.set("alias", alias)
    for key in ("joins", "pivots", "laterals"):
        if table.args.get(key):
            read.set(key, table.args[key])
    return read


def _extract(node: exp.Extract) -> exp.Expr:
    part = node.this
    value = node.expression
    if isinstance(part, exp.WeekStart):  # WEEK(MONDAY) ...
        return _week(value, _WEEKDAYS.index(part.name.upper()))
    name = part.name.upper()
    if name == "DAYOFWEEK":
        return _template("(EXTRACT(DAYOFWEEK FROM __x) + 1)", __x=value)
    if name == "WEEK":
        return _week(value, 0)
    if name == "ISOWEEK":
        return _template("EXTRACT(WEEK FROM __x)", __x=value)
    if name == "MILLISECOND":
        return _template("(EXTRACT(MILLISECOND FROM __x) % 1000)", __x=value)
    if name == "MICROSECOND":
        return _template("(EXTRACT(MICROSECOND FROM __x) % 1000000)", __x=value)
    if name in _EXTRACT_CASTS:
        return exp.cast(value, _EXTRACT_CASTS[name])
    return node


def _week(value: exp.Expr, first_day: int) -> exp.Expr:
    """BigQuery's WEEK(<day>): weeks start on ``first_day`` (0 = Sunday); days before the year's
    first such day are in week 0."""
    return _template(
        f"((EXTRACT(DAYOFYEAR FROM __x) + 6 - (EXTRACT(DAYOFWEEK FROM __x) - {first_day} + 7) % 7)"
        " // 7)",
        __x=value,
    )


def _unnest_with_offset(node: exp.Unnest, counter: object) -> exp.Expr:
    """``UNNEST(a) AS x WITH OFFSET AS o`` → ``(SELECT UNNEST(a) AS x, GENERATE_SUBSCRIPTS(a, 1) - 1
    AS o)``: BigQuery's offsets count from 0."""
    if len(node.expressions) != 1:
        raise SqlError(
            f"UNNEST of several arrays WITH OFFSET is not supported: `{node.sql('bigquery')}`"
        )
    array = node.expressions[0]
    alias = node.args.get("alias")
    columns = list(alias.columns) if alias is not None else []
    value = columns[0] if columns else (alias.this if alias is not None and alias.this else None)
    value_name = value.name if value is not None else "f0_"
    offset = node.args["offset"]
    offset_name = offset.name if isinstance(offset, exp.Expr) and offset.name else "offset"
    select = _template(
        f"SELECT UNNEST(__a) AS {exp.to_identifier(value_name).sql('duckdb')}, "
        f"GENERATE_SUBSCRIPTS(__a, 1) - 1 AS {exp.to_identifier(offset_name).sql('duckdb')}",
        __a=array,
    )
    number = next(counter)  # type: ignore[call-overload]
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(f"_u{number}")))


def _generate_array(node: exp.GenerateSeries) -> exp.Expr:
    """DuckDB's GENERATE_SERIES takes integers only: decimal bounds count steps instead."""
    start, end, step = (node.args.get(k) for k in ("start", "end", "step"))
    bounds = [b for b in (start, end, step) if b is not None]
    if not any(isinstance(b, exp.Literal) and not b.is_int and not b.is_string for b in bounds):
        return node
    return _template(
        "LIST_TRANSFORM(GENERATE_SERIES(0, CAST(FLOOR((__e - __s) / __st + 1e-9) AS BIGINT)), "
        "__i -> CAST(__s AS DOUBLE) + __i * __st)",
        __s=start or exp.Literal.number(0),
        __e=end or exp.Literal.number(0),
        __st=step or exp.Literal.number(1),
    )


# BigQuery format elements DuckDB's strftime/strptime lack, once sqlglot has mapped the rest.
_FORMAT_ELEMENTS = {"%E3S": "%S.%g", "%E*S": "%S.%f", "%E6S": "%S.%f"}


def _time_format(node: exp.TimeToStr | exp.StrToTime) -> exp.Expr:
    """Fractional seconds (``%E3S``, ``%E*S``) and, in FORMAT_*, the quarter (``%Q``)."""
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        return node
    text = fmt.this
    for element, duckdb in _FORMAT_ELEMENTS.items():
        text = text.replace(element, duckdb)
    node.set("format", exp.Literal.string(text))
    if "%Q" not in text or not isinstance(node, exp.TimeToStr):
        return node
    pieces: list[exp.Expr] = []
    quarter = _template("CAST(EXTRACT(QUARTER FROM __x) AS TEXT)", __x=node.this)
    for i, part in enumerate(text.split("%Q")):
        if i:
            pieces.append(quarter.copy())
        if part:
            piece = node.copy()
            piece.set("format", exp.Literal.string(part))
            pieces.append(piece)
    return (
        exp.Paren(this=exp.DPipe(this=pieces[0], expression=pieces[1]))
        if len(pieces) == 2
        else exp.Concat(expressions=pieces)
    )


def _template(sql: str, **nodes: exp.Expr) -> exp.Expr:
    """``sql`` (DuckDB) with each column named like a keyword argument replaced by its node."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for column in list(tree.find_all(exp.Column)):
        if column.name in nodes and not column.table:
            column.replace(nodes[column.name].copy())
    return tree
