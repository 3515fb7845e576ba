"""``kiln sql``: BigQuery ML statements from ``-e``, a file or an interactive shell.

Rows go to stdout (``--format table|csv|json``); what a statement did (``Created model ...``),
the training progress and errors go to stderr, so that ``--format csv`` or ``json`` output can be
piped as it is. JSON is one array of row objects per query. The shell reads statements until a
``;`` ends one (so a statement spans lines), keeps a history in ``.kiln/sql_history``, and knows
``.tables``, ``.models``, ``.format FORMAT``, ``.help`` and ``.quit``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pyarrow as pa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kiln.errors import KilnError, SqlError

if TYPE_CHECKING:
    from kiln.sql import Connection
    from kiln.train import IterationInfo

__all__ = ["FORMATS", "run_sql"]

FORMATS = ("table", "csv", "json")
_SHELL_HELP = """\
Statements end with ';' and may span lines. Commands:
  .tables          the warehouse's tables (dataset.table)
  .models          the registry's models
  .format FORMAT   table, csv or json
  .help            this text
  .quit            leave (or Ctrl-D)"""


def run_sql(
    *,
    statements: str | None,
    file: Path | None,
    output_format: str,
    max_rows: int,
    out: Console,
    err: Console,
) -> int:
    """Run ``statements`` or ``file``, else the shell; the exit code (0, or the first error's)."""
    from kiln.sql import connect

    fmt = output_format.lower()
    if fmt not in FORMATS:
        raise SqlError(f"--format {output_format!r}: choose one of {', '.join(FORMATS)}")
    if statements is not None and file is not None:
        raise SqlError("give statements with -e or a FILE, not both")
    if file is not None:
        try:
            statements = file.read_text(encoding="utf-8")
        except OSError as e:
            raise SqlError(f"cannot read {file}: {e.strerror}") from e
    progress = _TrainingProgress(err)
    with connect(progress=progress) as conn:
        printer = _Printer(fmt, max_rows, out, err)
        if statements is not None:
            _run(conn, statements, printer, progress)
            return 0
        return _shell(conn, printer, progress, err)


def _run(conn: Connection, text: str, printer: _Printer, progress: _TrainingProgress) -> None:
    """Run each statement of ``text``, printing as it goes; the first error is raised."""
    from kiln.sql._parse import parse_script

    for statement in parse_script(text):
        try:
            result = conn.run(statement)
        finally:
            progress.done()
        if result.table is not None:
            printer.rows(result.table)
        if result.message:
            printer.message(f"{result.message} [{result.seconds:.2f} s]")


def _shell(conn: Connection, printer: _Printer, progress: _TrainingProgress, err: Console) -> int:
    interactive = sys.stdin.isatty()
    history = conn.workspace.root / ".kiln" / "sql_history"
    if interactive:
        _readline(history)
        err.print(f"kiln sql on {escape(str(conn.path))}; .help for help, .quit to leave")
    code = 0
    buffer: list[str] = []
    while True:
        try:
            line = _read(interactive, "   ...> " if buffer else "kiln sql> ", sys.stdin)
        except EOFError:
            break
        except KeyboardInterrupt:
            buffer.clear()
            err.print()
            continue
        if not buffer and line.strip().startswith("."):
            if not _command(line.strip(), conn, printer, err):
                break
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if not _complete(text):
            continue
        buffer.clear()
        try:
            _run(conn, text, printer, progress)
        except KilnError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}")
            code = code or e.exit_code
    if buffer and "".join(buffer).strip():
        try:  # the last statement without its ';'
            _run(conn, "\n".join(buffer), printer, progress)
        except KilnError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}")
            code = code or e.exit_code
    if interactive:
        _save_history(history)
    # piped into the shell, a statement that failed fails the whole input (as -e would)
    return 0 if interactive else code


def _command(line: str, conn: Connection, printer: _Printer, err: Console) -> bool:
    """A dot-command; False to leave the shell."""
    word, _, rest = line.partition(" ")
    if word in (".quit", ".exit", ".q"):
        return False
    if word == ".tables":
        printer.rows(pa.table({"table": pa.array(conn.tables(), pa.string())}))
    elif word == ".models":
        printer.rows(pa.table({"model": pa.array(conn.models(), pa.string())}))
    elif word == ".format" and rest.strip().lower() in FORMATS:
        printer.fmt = rest.strip().lower()
    elif word == ".help":
        err.print(_SHELL_HELP, markup=False)
    else:
        err.print(f"[bold red]error:[/] unknown command {escape(line)!r}; .help lists them")
    return True


def _complete(text: str) -> bool:
    """Whether ``text`` ends with a ``;`` that is outside strings, identifiers and comments."""
    quote: str | None = None
    last_significant = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote in "'\"":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
            i += 1
            continue
        if text.startswith("--", i) or c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        for q in ('"""', "'''", "'", '"', "`"):
            if text.startswith(q, i):
                quote = q
                i += len(q)
                break
        else:
            if not c.isspace():
                last_significant = c
            i += 1
    return quote is None and last_significant == ";"


def _read(interactive: bool, prompt: str, stream: TextIO) -> str:
    if interactive:
        return input(prompt)
    line = stream.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def _readline(history: Path) -> None:
    try:
        import readline
    except ImportError:  # (Windows without pyreadline)
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)


def _save_history(history: Path) -> None:
    try:
        import readline

        readline.write_history_file(history)
    except (ImportError, OSError):
        pass


class _TrainingProgress:
    """The loss per iteration while CREATE MODEL trains: a line that updates in a terminal,
    a line every second otherwise (and always the last iteration)."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.last: tuple[str, IterationInfo] | None = None
        self.printed = 0.0
        self.shown = ""  # the text last printed as a line
        self.status: Any = None

    def __call__(self, model: str, info: IterationInfo) -> None:
        self.last = (model, info)
        text = _iteration_text(model, info)
        if self.err.is_terminal:
            if self.status is None:
                self.status = self.err.status(escape(text))
                self.status.start()
            else:
                self.status.update(escape(text))
        elif time.monotonic() - self.printed >= 1.0:
            self.err.print(escape(text))
            self.printed = time.monotonic()
            self.shown = text

    def done(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.last is not None:
            text = _iteration_text(*self.last)
            if text != self.shown:
                self.err.print(escape(text))
            self.last = None
            self.printed = 0.0
            self.shown = ""


def _iteration_text(model: str, info: IterationInfo) -> str:
    parts = [f"training {model}: iteration {info.iteration}"]
    for name in ("loss", "eval_loss", "learning_rate"):
        value = getattr(info, name, None)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{name} {value:.6g}")
    return ", ".join(parts)


class _Printer:
    def __init__(self, fmt: str, max_rows: int, out: Console, err: Console) -> None:
        self.fmt = fmt
        self.max_rows = max_rows
        self.out = out
        self.err = err

    def message(self, text: str) -> None:
        self.err.print(escape(text))

    def rows(self, table: pa.Table) -> None:
        if self.fmt == "json":
            self.out.print(
                json.dumps(
                    _finite(table.to_pylist()), default=_json, allow_nan=False, ensure_ascii=False
                ),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        elif self.fmt == "csv":
            self.out.file.write(_csv(table))
            self.out.file.flush()
        else:
            self._table(table)

    def _table(self, table: pa.Table) -> None:
        shown = table.slice(0, self.max_rows) if self.max_rows > 0 else table
        view = Table(show_edge=False, header_style="bold", pad_edge=False)
        for field in table.schema:
            numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
            view.add_column(escape(field.name), justify="right" if numeric else "left")
        for row in shown.to_pylist():
            view.add_row(*(escape(_cell(v)) for v in row.values()))
        self.out.print(view)
        more = table.num_rows - shown.num_rows
        tail = f" ({more} more not shown; --max-rows)" if more > 0 else ""
        self.err.print(f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}{tail}")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json, ensure_ascii=False)
    return str(value)


def _csv(table: pa.Table) -> str:
    """CSV with a header; nested values (arrays, structs) as JSON in their cell."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_csv_cell(v) for v in row.values()])
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json, ensure_ascii=False)
    if isinstance(value, dt.date | dt.datetime | dt.time | bytes | decimal.Decimal):
        return _json(value)
    if isinstance(value, float):
        return repr(value)  # every digit (str would too; repr says so)
    return value


def _finite(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither), in nested lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")
