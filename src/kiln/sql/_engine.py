"""The engine behind ``kiln sql``: statements in, Arrow tables out.

A statement is parsed (:func:`kiln.sql._parse.parse_script`), then:

- ``CREATE MODEL``: the ``AS`` query runs on DuckDB; its OPTIONS are resolved against the
  query's columns (:mod:`kiln.sql._options`); the rows are split as BigQuery ML splits them; a
  ``TRANSFORM`` is fitted on the training rows (:mod:`kiln.sql._preprocess`); Kiln trains
  (:mod:`kiln.sql._train`); what the no-data forms of ``ML.EVALUATE`` & co. return is computed
  on the evaluation rows; the model is saved and registered as the next version of
  ``dataset.model``.
- ``DROP MODEL``: every version of the model leaves the registry (refused while an alias holds
  one: a served model is not dropped by accident).
- any other statement: each ``ML.*`` table function in it (deepest first, its input query run
  the same way, with the CTEs it can see) is computed into an Arrow table that DuckDB reads
  in its place; the statement, transpiled to DuckDB, runs on the warehouse.

DuckDB's errors are translated at this boundary into :class:`~kiln.errors.SqlError` worded
like BigQuery's (``Not found: Table ds.t``, ``Unrecognized name: x``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb
import pyarrow as pa
from sqlglot import exp

from kiln._threads import kiln_threads, prefetched
from kiln.errors import KilnError, ModelNotFoundError, SqlError, VersionInUseError
from kiln.registry import ModelRegistry
from kiln.sql._model import SqlModel
from kiln.sql._parse import (
    CreateModel,
    DropModel,
    MLCall,
    ModelName,
    Query,
    Statement,
    ml_calls,
    ml_extra,
    ml_model,
    ml_name,
    ml_settings,
    parse_script,
)
from kiln.workspace import STATE_DIR, Workspace

if TYPE_CHECKING:
    import polars as pl

    from kiln.model import Model
    from kiln.sql._options import ResolvedOptions
    from kiln.sql._train import TrainResult
    from kiln.train import IterationInfo

__all__ = ["WAREHOUSE", "Connection", "StatementResult", "connect"]

WAREHOUSE = "warehouse.duckdb"
"""The warehouse's file name under the workspace's ``.kiln/`` folder."""

Progress = Callable[[str, "IterationInfo"], None]
"""Told ``(model name, iteration)`` for every training iteration of a CREATE MODEL."""

_TEMP_PREFIX = "__kiln_ml_"
STREAM_BATCH_ROWS = 65_536
"""Rows per batch read from DuckDB (Model.predict's own chunk size)."""
_STREAMED = frozenset({"PREDICT", "TRANSFORM"})
"""ML.* functions that go row by row: their input streams through them in batches."""
_counter = itertools.count(1)


@dataclass
class StatementResult:
    """What one statement did: its rows (None for statements that return none) and a message
    for the ones that change something (``Created model bqml.mass (models:/bqml.mass/1)``)."""

    kind: str  # "query", "create_model", "drop_model", "statement"
    table: pa.Table | None = None
    message: str | None = None
    seconds: float = 0.0


def connect(
    workspace: Workspace | Path | str | None = None,
    *,
    warehouse: Path | str | None = None,
    progress: Progress | None = None,
) -> Connection:
    """A connection to the workspace's warehouse and registry (the workspace found from the
    current folder, or created there, when none is given)."""
    return Connection(workspace, warehouse=warehouse, progress=progress)


class Connection:
    """A DuckDB warehouse and a model registry, spoken to in BigQuery ML's dialect."""

    def __init__(
        self,
        workspace: Workspace | Path | str | None = None,
        *,
        warehouse: Path | str | None = None,
        progress: Progress | None = None,
    ) -> None:
        if workspace is None:
            workspace = Workspace.find_or_create()
        elif not isinstance(workspace, Workspace):
            workspace = Workspace(Path(workspace))
        self.workspace = workspace
        self.progress = progress
        path = Path(warehouse) if warehouse else workspace.root / STATE_DIR / WAREHOUSE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._db = duckdb.connect(str(path), config={"threads": kiln_threads()})
        except duckdb.IOException as e:
            raise SqlError(
                f"cannot open the warehouse {path}: {_first_line(e)}. Another process may hold "
                "it open (one kiln sql at a time per workspace); close it and retry"
            ) from e
        # UTC: BigQuery's TIMESTAMP is UTC, and sqlglot maps it to DuckDB's TIMESTAMPTZ, whose
        # parts would follow this machine's zone where DuckDB has its ICU extension (without
        # it, DuckDB's TIMESTAMPTZ is UTC already)
        with contextlib.suppress(duckdb.Error):
            self._db.execute("SET TimeZone = 'UTC'")
        self._registry = ModelRegistry(workspace)
        self._models: dict[tuple[str, int], SqlModel] = {}
        self._temps: dict[str, pa.Table] = {}  # ML.* results DuckDB reads during a statement

    # ------------------------------------------------------------------ the public surface

    def sql(self, text: str) -> pa.Table | None:
        """Run every statement of ``text``; the last one's rows (None when it returns none)."""
        results = self.execute(text)
        return results[-1].table if results else None

    def pl(self, text: str) -> pl.DataFrame:
        """:meth:`sql` as a Polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self._rows(text))  # type: ignore[return-value]

    def df(self, text: str) -> Any:
        """:meth:`sql` as a pandas DataFrame (pandas is not typed: ``Any``)."""
        return self._rows(text).to_pandas()

    def execute(self, text: str) -> list[StatementResult]:
        """Run every statement of ``text`` in order, stopping at the first that fails."""
        return [self.run(statement) for statement in parse_script(text)]

    def run(self, statement: Statement) -> StatementResult:
        """Run one parsed statement."""
        start = time.perf_counter()
        if isinstance(statement, CreateModel):
            result = self._create_model(statement)
        elif isinstance(statement, DropModel):
            result = self._drop_model(statement)
        else:
            result = self._query(statement)
        result.seconds = time.perf_counter() - start
        return result

    def tables(self) -> list[str]:
        """The warehouse's tables and views, as ``dataset.table``."""
        rows = self._db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_name NOT LIKE '__kiln_ml_%' "
            "ORDER BY 1, 2"
        ).fetchall()
        return [name if schema == "main" else f"{schema}.{name}" for schema, name in rows]

    def models(self) -> list[str]:
        """The registry's models (those made in SQL are named ``dataset.model``)."""
        return [m.name for m in self._registry.models() if m.num_versions]

    def close(self) -> None:
        self._db.close()
        self._models.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ queries

    def _rows(self, text: str) -> pa.Table:
        table = self.sql(text)
        if table is None:
            raise SqlError("the last statement returns no rows; end with a query")
        return table

    def _query(self, statement: Query) -> StatementResult:
        expression = statement.expression
        self._check_not_a_model(expression)
        table = self._arrow(expression)
        if table is None:
            return StatementResult("statement", message=_done_message(expression))
        return StatementResult("query", table)

    def _arrow(self, expression: exp.Expr) -> pa.Table | None:
        """Run ``expression`` (its ML.* calls computed first) on DuckDB; its rows, or None."""
        with self._prepared(expression) as (expression, whole):
            if whole is not None:  # SELECT * FROM ML.PREDICT(...): its table as is, no copy
                return whole
            sql = self._to_duckdb(expression)
            try:
                if isinstance(expression, exp.Query):  # SELECT, UNION, WITH ...: rows
                    return self._db.sql(sql).to_arrow_reader(STREAM_BATCH_ROWS).read_all()
                self._db.execute(sql)  # CREATE TABLE, INSERT, DROP ...: no rows
                return None
            except duckdb.Error as e:
                raise _translate(e, sql) from e

    @contextlib.contextmanager
    def _prepared(self, expression: exp.Expr) -> Iterator[tuple[exp.Expr, pa.Table | None]]:
        """``expression`` with its ML.* calls computed into temporary tables (dropped on
        leaving); and, when it is just ``SELECT * FROM`` one ML.* call, that call's table."""
        temps: list[str] = []
        try:
            expression = self._substitute(expression, temps)
            whole = None
            if (
                isinstance(expression, exp.Select)
                and len(temps) == 1
                and _is_select_star_from(expression, temps[0])
            ):
                whole = self._temps[temps[0]]
            yield expression, whole
        finally:
            for name in temps:
                self._temps.pop(name, None)
                with contextlib.suppress(duckdb.Error):
                    self._db.unregister(name)

    def _streamed(
        self,
        function: Callable[..., pa.Table],
        model: SqlModel,
        query: exp.Expr,
        settings: dict[str, Any],
        extra: list[Any],
    ) -> pa.Table:
        """A row-by-row function over the rows of ``query`` as DuckDB streams them: batch
        ``k + 1`` is read on a second thread while batch ``k`` is predicted."""
        with self._prepared(query) as (query, whole):
            if not isinstance(query, exp.Query):
                raise SqlError("the input of an ML function must be a query or TABLE name")
            if whole is not None:
                reader = pa.RecordBatchReader.from_batches(
                    whole.schema, whole.to_batches(max_chunksize=STREAM_BATCH_ROWS)
                )
                sql = ""
            else:
                sql = self._to_duckdb(query)
                try:
                    reader = self._db.sql(sql).to_arrow_reader(STREAM_BATCH_ROWS)
                except duckdb.Error as e:
                    raise _translate(e, sql) from e
            outputs = [
                function(model, pa.Table.from_batches([batch]), settings, extra)
                for batch in _prefetched(reader, sql)
            ]
            if not outputs:  # no rows: the columns all the same
                outputs = [function(model, reader.schema.empty_table(), settings, extra)]
        return outputs[0] if len(outputs) == 1 else pa.concat_tables(outputs)

    def _substitute(self, expression: exp.Expr, temps: list[str]) -> exp.Expr:
        """``expression`` with each outermost ML.* call replaced by a table DuckDB can read."""
        expression = expression.copy()
        for call in [c for c in ml_calls(expression) if c.find_ancestor(MLCall) is None]:
            table = self._call(call)
            name = f"{_TEMP_PREFIX}{os.getpid()}_{next(_counter)}"
            self._db.register(name, table)
            self._temps[name] = table
            temps.append(name)
            replacement = exp.Table(this=exp.to_identifier(name))
            parent = call.parent
            if isinstance(parent, exp.Table) and parent.this is call:
                parent.set("this", exp.to_identifier(name))
            else:
                call.replace(replacement)
        return expression

    def _call(self, call: MLCall) -> pa.Table:
        """Compute one ML.* table function (its input query first)."""
        name = ml_name(call)
        function = _function(name)
        model = self._model(ml_model(call))
        source = call.args.get("input")
        query: exp.Expr | None = None
        if isinstance(source, exp.Subquery):
            query = _with_visible_ctes(source.this, call)
        elif isinstance(source, exp.Table):
            query = exp.select("*").from_(source.copy())
        elif source is not None:
            query = _with_visible_ctes(source, call)
        settings, extra = ml_settings(call), ml_extra(call)
        try:
            if query is not None and name in _STREAMED:
                return self._streamed(function, model, query, settings, extra)
            table = None if query is None else self._arrow(query)
            if query is not None and table is None:
                raise SqlError(f"ML.{name}: the input of MODEL {model.name} returns no rows")
            return function(model, table, settings, extra)
        except KilnError:
            raise
        except (ValueError, TypeError, pa.ArrowException) as e:  # a library's complaint
            raise SqlError(f"ML.{name}(MODEL {model.name}): {e}") from e

    def _to_duckdb(self, expression: exp.Expr) -> str:
        from kiln.sql._dialect import to_duckdb

        return to_duckdb(expression, catalogs=self._catalogs())

    def _catalogs(self) -> list[str]:
        rows = self._db.execute("SELECT database_name FROM duckdb_databases()").fetchall()
        return [r[0] for r in rows]

    def _check_not_a_model(self, expression: exp.Expr) -> None:
        """A table or view cannot take the name of a model (BigQuery's shared namespace)."""
        if not isinstance(expression, exp.Create):
            return
        kind = str(expression.args.get("kind") or "").upper()
        target = expression.this
        if isinstance(target, exp.Schema):
            target = target.this
        if kind not in ("TABLE", "VIEW") or not isinstance(target, exp.Table):
            return
        name = _qualified(target)
        if self._has_model(name):
            raise SqlError(
                f"Already Exists: Model {name}. A table and a model cannot share a name in a "
                f"dataset; choose another name, or DROP MODEL {name} first"
            )

    # ------------------------------------------------------------------ models

    def _has_model(self, name: str) -> bool:
        try:
            return self._registry.model(name).num_versions > 0
        except KilnError:
            return False

    def _model(self, ref: ModelName) -> SqlModel:
        """The latest version of model ``ref`` (kept loaded while it stays the latest)."""
        name = ref.qualified
        try:
            version = self._registry.get(name)
        except ModelNotFoundError as e:
            raise SqlError(f"Not found: Model {name}") from e
        except KilnError as e:
            raise SqlError(f"Not found: Model {name} ({e})") from e
        key = (name, version.version)
        cached = self._models.get(key)
        if cached is None:
            model = version.load()
            cached = SqlModel(name, version.version, model, dict(model.info.get("sql") or {}))
            self._models = {k: v for k, v in self._models.items() if k[0] != name}
            self._models[key] = cached
        return cached

    def _create_model(self, statement: CreateModel) -> StatementResult:
        from kiln.sql._options import resolve_options, split_data
        from kiln.sql._train import train

        ref = statement.model
        if ref.dataset is None:
            raise SqlError(
                f'Table name "{ref.name}" missing dataset while no default dataset is set in '
                f"the request: name the model dataset.{ref.name}"
            )
        name = ref.qualified
        if self._has_model(name):
            if statement.if_not_exists:
                return StatementResult(
                    "create_model", message=f"Model {name} already exists; nothing done"
                )
            if not statement.replace:
                raise SqlError(
                    f"Already Exists: Model {name}. Use CREATE OR REPLACE MODEL to train a new "
                    "version, or CREATE MODEL IF NOT EXISTS to keep it"
                )
        if self._has_table(ref):
            raise SqlError(
                f"Already Exists: Table {name}. A model and a table cannot share a name in a "
                "dataset; choose another model name"
            )
        if statement.query is None:
            raise SqlError(
                f"CREATE MODEL {name} has no AS query: kiln sql trains on the rows of a query "
                "(AS SELECT ... FROM dataset.table)"
            )
        data = self._arrow(statement.query)
        if data is None or data.num_rows == 0:
            raise SqlError(f"CREATE MODEL {name}: the training query returned no rows")
        resolved = resolve_options(statement.options, data.schema)
        train_rows, eval_rows = split_data(data, resolved.split, label=resolved.label)
        pre = None
        if statement.transform is not None:
            from kiln.sql._preprocess import compile_transform

            pre = compile_transform(statement.transform, train_rows, label=resolved.label)
            fit_train = pre.apply(train_rows)
            fit_eval = pre.apply(eval_rows) if eval_rows is not None else None
        else:
            fit_train, fit_eval = train_rows, eval_rows

        def on_iteration(info: IterationInfo) -> None:
            if self.progress is not None:
                self.progress(name, info)

        trained = train(resolved, fit_train, fit_eval, on_iteration=on_iteration)
        model = trained.model
        if pre is not None:
            model = _with_transform(model, pre, train_rows, resolved.label)
        model.info["sql"] = self._summaries(
            statement, resolved, model, train_rows, eval_rows, trained
        )
        with self._staging() as folder:
            model.save(folder / "model")
            try:
                version = self._registry.register_folder(
                    name,
                    folder / "model",
                    description=statement.text,
                    tags={"created_by": "kiln sql", "model_type": resolved.model_type},
                )
            except KilnError as e:
                raise SqlError(f"CREATE MODEL {name}: registering it failed: {e}") from e
        self._db.execute(f'CREATE SCHEMA IF NOT EXISTS "{ref.dataset}"')
        verb = "Replaced" if statement.replace and version.version > 1 else "Created"
        return StatementResult(
            "create_model",
            message=f"{verb} model {name} ({version.uri}): {resolved.model_type}, trained on "
            f"{train_rows.num_rows} rows"
            + (f", evaluated on {eval_rows.num_rows}" if eval_rows is not None else ""),
        )

    def _summaries(
        self,
        statement: CreateModel,
        resolved: ResolvedOptions,
        model: Model,
        train_rows: pa.Table,
        eval_rows: pa.Table | None,
        trained: TrainResult,
    ) -> dict[str, Any]:
        """What the ML.* functions read back: options, feature info, no-data evaluation..."""
        from kiln.sql._ml_eval import training_summary

        info: dict[str, Any] = {
            "model_type": resolved.model_type,
            "options": resolved.options,
            "statement": statement.text,
            "label": resolved.label,
            "transform": statement.transform is not None,
        }
        info |= training_summary(model, resolved.model_type, train_rows, eval_rows)
        if resolved.global_explain:
            from kiln.sql._ml_inspect import global_explain_summary

            info["global_explain"] = global_explain_summary(model, resolved.model_type, train_rows)
        if model.task in ("clustering", "dimensionality_reduction"):  # k-means, PCA
            from kiln.sql._ml_inspect import anomaly_summary

            info["anomaly"] = anomaly_summary(model, resolved.model_type, train_rows)
        if trained.trials is not None:
            info["trials"] = trained.trials.to_pylist()
        if trained.leaderboard is not None:
            info["leaderboard"] = trained.leaderboard.to_pylist()
        return info

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix=".kiln-sql-", dir=self.workspace.root / STATE_DIR))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _has_table(self, ref: ModelName) -> bool:
        row = self._db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND table_schema = ? AND table_name = ?",
            [ref.dataset or "main", ref.name],
        ).fetchone()
        return bool(row and row[0])

    def _drop_model(self, statement: DropModel) -> StatementResult:
        name = statement.model.qualified
        if not self._has_model(name):
            if statement.if_exists:
                return StatementResult("drop_model", message=f"Model {name} does not exist")
            raise SqlError(f"Not found: Model {name}")
        versions = self._registry.versions(name)
        held = [(v.version, a) for v in versions for a in v.aliases]
        if held:
            version, alias = held[0]
            raise SqlError(
                f"DROP MODEL {name}: version {version} holds alias {alias!r} (it may be "
                f"serving); move or remove the alias first (kiln models rollback {name} --alias "
                f"{alias}), then drop"
            )
        for v in versions:
            try:
                self._registry.delete_version(name, v.version)
            except VersionInUseError as e:  # an alias set meanwhile
                raise SqlError(f"DROP MODEL {name}: {e}") from e
        self._models = {k: v for k, v in self._models.items() if k[0] != name}
        return StatementResult(
            "drop_model", message=f"Dropped model {name} ({len(versions)} version(s))"
        )


# ---------------------------------------------------------------------- helpers


def _prefetched(reader: pa.RecordBatchReader, sql: str) -> Iterator[pa.RecordBatch]:
    """``reader``'s batches, the next one read on a second thread while this one is used
    (DuckDB and Arrow release the GIL while they read); DuckDB's errors translated."""
    try:
        yield from prefetched(reader, name="kiln-sql-read")
    except duckdb.Error as e:
        raise _translate(e, sql) from e


@functools.cache
def _functions() -> dict[str, Callable[..., pa.Table]]:
    """Every ML.* table function by its name after ``ML.`` (imported on first use)."""
    from kiln.sql._ml_eval import FUNCTIONS as EVAL
    from kiln.sql._ml_inspect import FUNCTIONS as INSPECT
    from kiln.sql._preprocess import ml_transform

    return {**EVAL, **INSPECT, "TRANSFORM": ml_transform}


def _function(name: str) -> Callable[..., pa.Table]:
    functions = _functions()
    function = functions.get(name)
    if function is None:
        known = ", ".join(f"ML.{n}" for n in sorted(functions))
        raise SqlError(f"Function not found: ML.{name}. kiln sql knows {known}")
    return function


def _with_visible_ctes(query: exp.Expr, call: MLCall) -> exp.Expr:
    """``query`` with the CTEs that ``call`` can see and ``query`` reads (directly or through
    another CTE): those of each WITH around it, but in a CTE's own WITH only the ones defined
    before that CTE (a CTE never sees itself or later ones)."""
    visible: list[exp.CTE] = []
    child: exp.Expr = call
    node = call.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            inside = next((i for i, c in enumerate(ctes) if c is child), None)
            visible = ctes[: len(ctes) if inside is None else inside] + visible
        child, node = node, node.parent
    query = query.copy()
    by_name = {c.alias_or_name: c for c in visible}  # (a later CTE of one name shadows)
    needed: list[str] = []
    pending = [t.name for t in query.find_all(exp.Table) if not t.args.get("db")]
    while pending:
        name = pending.pop()
        if name in by_name and name not in needed:
            needed.append(name)
            pending += [t.name for t in by_name[name].find_all(exp.Table) if not t.args.get("db")]
    if not needed:
        return query
    ctes = [
        c.copy() for c in visible if c.alias_or_name in needed and by_name[c.alias_or_name] is c
    ]
    own = query.args.get("with_") or query.args.get("with")
    if isinstance(own, exp.With):
        ctes += list(own.expressions)
    key = "with_" if "with_" in type(query).arg_types else "with"
    query.set(key, exp.With(expressions=ctes))
    return query


def _is_select_star_from(select: exp.Select, name: str) -> bool:
    """``SELECT * FROM name`` exactly (nothing else: no WHERE, ORDER, LIMIT, alias...)."""
    if len(select.expressions) != 1 or not isinstance(select.expressions[0], exp.Star):
        return False
    star = select.expressions[0]
    if any(star.args.get(k) for k in star.arg_types):
        return False
    others = {k for k, v in select.args.items() if v and k not in ("expressions", "from", "from_")}
    source = select.args.get("from_") or select.args.get("from")
    if others or not isinstance(source, exp.From) or not isinstance(source.this, exp.Table):
        return False
    table = source.this
    return table.name == name and not table.args.get("db") and not table.alias


def _qualified(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def _with_transform(model: Model, pre: Any, raw: pa.Table, label: str | None) -> Model:
    """The model fitted on the TRANSFORM's output, taking the RAW columns as its input."""
    from kiln.model import Model
    from kiln.transform._sql import SqlThenTransform

    needed = set(pre.input_columns)
    raw_inputs = raw.select([c for c in raw.column_names if c in needed and c != label])
    return Model.assemble(
        model.trainer,
        SqlThenTransform(pre, model.transform),
        table=raw_inputs,
        label=label,
        metrics=model.metrics,
        info=model.info,
    )


def _done_message(expression: exp.Expr) -> str:
    kind = type(expression).__name__.upper()
    if isinstance(expression, exp.Create | exp.Drop):
        what = str(expression.args.get("kind") or "").upper()
        target = expression.this
        if isinstance(target, exp.Schema):
            target = target.this
        name = target.sql("bigquery") if isinstance(target, exp.Expr) else ""
        verb = "Created" if isinstance(expression, exp.Create) else "Dropped"
        return f"{verb} {what.lower()} {name}".strip()
    return f"{kind.capitalize()} done"


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist", re.IGNORECASE)
_MISSING_SCHEMA = re.compile(r"Schema with name (\S+) does not exist", re.IGNORECASE)
_MISSING_COLUMN = re.compile(r'Referenced column "?([^"\s]+)"? not found', re.IGNORECASE)
_MISSING_FILE = re.compile(r'No files found that match the pattern "([^"]+)"', re.IGNORECASE)


def _translate(e: duckdb.Error, sql: str) -> SqlError:
    """DuckDB's error, worded like BigQuery's where there is an equivalent."""
    text = str(e)
    if m := _MISSING_TABLE.search(text):
        return SqlError(f"Not found: Table {m.group(1).strip('!')} ({_first_line(e)})")
    if m := _MISSING_SCHEMA.search(text):
        return SqlError(
            f"Not found: Dataset {m.group(1).strip('!')}; create it with CREATE SCHEMA "
            f"{m.group(1).strip('!')} ({_first_line(e)})"
        )
    if m := _MISSING_COLUMN.search(text):
        return SqlError(f"Unrecognized name: {m.group(1)} ({_first_line(e)})")
    if m := _MISSING_FILE.search(text):
        return SqlError(f"Not found: File {m.group(1)}")
    kind = type(e).__name__.replace("Exception", " error").replace("Error", "error")
    return SqlError(f"{kind.strip()}: {_first_line(e)}\n  in: {sql[:300]}")
