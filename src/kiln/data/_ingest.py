"""Reading data into Arrow: CSV/TSV, Parquet, JSON Lines, Arrow IPC, DuckDB SQL and data frames.

TFX's ExampleGen, on Arrow. Every reader returns a :class:`pyarrow.Table` (or, from
:func:`iter_batches`, a stream of record batches), and every problem with the data is a
:class:`~kiln.errors.DataError` that names the file, the line or row and the column::

    read_table("data/train.csv")                      # format from the extension
    read_table("data/part-*.parquet")                 # a glob: every match, in name order
    read_table("data/parquet_folder/")                # a folder: every data file under it
    read_table(df)                                    # pandas or Polars DataFrame, Arrow table
    read_sql("SELECT * FROM 'data/*.csv' WHERE y IS NOT NULL")   # DuckDB over files

Choices, and why:

* SQL is explicit: :func:`read_sql` runs a query, :func:`read_table` never guesses that a string
  is one (a string that looks like a query is refused with a pointer to :func:`read_sql`), so a
  file called ``select.csv`` can never be mistaken for a query.
* CSV null markers default to :data:`DEFAULT_NULL_VALUES` (the empty field, ``NA``, ``N/A``,
  ``n/a``, ``NULL``, ``null``, ``None``, ``#N/A``). ``NaN`` is *not* among them: in a number
  column it reads as the float NaN, which the statistics count apart from missing values, as TFDV
  does.
* CSV types are inferred over the whole file. A column that mixes numbers and text is read as
  STRING without a word (TFDV does the same); a value that does not parse as a type the caller
  *declared* (``column_types``) is an error naming its line and column.
* A header-only CSV is a table with no rows and STRING columns (nothing more is known); the
  statistics and validation layer reports that it is empty. A zero-byte file is an error.
* A column with no value at all reads fine, typed ``null``.
* JSON Lines has real types, so a column whose values change type (number, then string) is an
  error naming the line and the column, not a silent cast.
* Text must be UTF-8; other bytes are an error naming the line, the byte offset and the column.
"""

from __future__ import annotations

import codecs
import csv
import glob
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import pyarrow.ipc as pa_ipc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from kiln.errors import DataError

__all__ = ["DEFAULT_NULL_VALUES", "FORMATS", "iter_batches", "read_sql", "read_table"]

DEFAULT_NULL_VALUES: tuple[str, ...] = ("", "NA", "N/A", "n/a", "NULL", "null", "None", "#N/A")
"""What a CSV field must hold to be read as missing, unless ``null_values`` says otherwise."""

FORMATS: tuple[str, ...] = ("csv", "tsv", "parquet", "jsonl", "arrow")
"""The file formats :func:`read_table` reads (``format=``; also ``pq``, ``json``, ``ndjson``,
``txt``, ``feather`` and ``ipc``, the names of their extensions)."""

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_ALIASES = {
    **{ext[1:]: fmt for ext, fmt in _EXTENSIONS.items()},
    **{fmt: fmt for fmt in FORMATS},
    "json": "jsonl",
    "txt": "csv",
}
_GLOB_CHARS = re.compile(r"[*?\[]")
_SQL_START = re.compile(r"^\s*(select|with|from|values|pivot|unpivot)\s", re.IGNORECASE)
_WIDER = {"null": pa.int64(), "int64": pa.float64()}  # CSV streaming: a type that failed -> next
_TEXT_CHUNK = 1 << 20


def read_table(
    source: object,
    *,
    format: str | None = None,
    delimiter: str | None = None,
    header: bool = True,
    null_values: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
) -> pa.Table:
    """Read ``source`` into an Arrow table.

    ``source`` is a path (``str`` or :class:`~pathlib.Path`) to a file, a folder of files or a
    glob pattern, or a pandas DataFrame, a Polars DataFrame or LazyFrame, an Arrow table, record
    batch or record batch reader. A path's format comes from its extension (``.csv``, ``.tsv``,
    ``.txt``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``, ``.arrow``/``.feather``/``.ipc``)
    unless ``format`` names one of :data:`FORMATS`. Several files (folder, glob) are read in name
    order and concatenated; their schemas must agree up to type widening.

    CSV options: ``delimiter`` (``","``; ``"\\t"`` for ``.tsv``), ``header`` (``False``: columns
    are named ``f0``, ``f1``, …), ``null_values`` (default :data:`DEFAULT_NULL_VALUES`) and
    ``column_types`` (declared Arrow types; every other column is inferred). ``columns`` keeps
    those columns, in that order, for every source.

    Raises :class:`~kiln.errors.DataError` naming file, line and column for anything unreadable.
    """
    if isinstance(source, str | os.PathLike):
        files, fmt = _resolve(source, format)
        opts = _CsvOptions.make(fmt, delimiter, header, null_values, column_types)
        tables = [(f, _read_file(f, fmt, opts, columns)) for f in files]
        if fmt in ("csv", "tsv") and len(tables) > 1:
            tables = _widen_csv(tables, opts)
        table = _concat(tables)
        where = str(source)
    else:
        where = _describe(source)
        table = _from_object(source, where)
    return _select(table, columns, where)


def read_sql(query: str, *, tables: Mapping[str, object] | None = None) -> pa.Table:
    """Run a DuckDB SQL ``query`` and return its result as an Arrow table.

    Files are queried with DuckDB's own syntax (``FROM 'data/*.csv'``, ``read_parquet(…)``).
    ``tables`` names in-memory sources (anything :func:`read_table` reads) for the query to use::

        read_sql("SELECT city, count(*) AS n FROM t GROUP BY city", tables={"t": df})
    """
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        for name, value in (tables or {}).items():
            con.register(name, read_table(value))
        relation = con.sql(query)
        if relation is None:
            raise DataError(
                f"the SQL statement returned no table: {_short(query)!r}; "
                "read_sql needs a query (SELECT …)"
            )
        return relation.to_arrow_table()
    except duckdb.Error as e:
        raise DataError(f"the SQL query failed: {e}\n  query: {_short(query, 500)}") from e
    finally:
        con.close()


def iter_batches(
    source: object,
    *,
    batch_size: int = 65_536,
    format: str | None = None,
    delimiter: str | None = None,
    header: bool = True,
    null_values: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    dictionary: Sequence[str] = (),
    use_threads: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Stream ``source`` as record batches of at most ``batch_size`` rows, all of one schema.

    Parquet, CSV and Arrow IPC files are streamed with bounded memory. A CSV file is read twice:
    a first pass settles each column's type over the whole file (the type :func:`read_table`
    would give, so the batches agree with it), the second yields batches. JSON Lines files and
    in-memory sources are read whole, then cut into batches. Options as for :func:`read_table`.

    ``dictionary`` names string columns to read as dictionary arrays where the Parquet file
    stores them with a small dictionary (few distinct values; see ``_small_dictionaries``):
    the values are then never spelled out row by row, and a category lookup runs once per
    dictionary entry (the benchmark's 8 string columns of 1,000,000 rows read in 0.11 s instead
    of 0.19 s). Other formats, and columns with large dictionaries, come as plain strings.

    ``use_threads=False`` decodes Parquet on the calling thread instead of Arrow's pool: for a
    reader that already runs on a thread of its own beside other work (batch prediction).
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, not {batch_size}")
    if not isinstance(source, str | os.PathLike):
        table = read_table(source, columns=columns)
        yield from table.to_batches(max_chunksize=batch_size)
        return
    files, fmt = _resolve(source, format)
    opts = _CsvOptions.make(fmt, delimiter, header, null_values, column_types)
    if fmt in ("csv", "tsv"):
        batches = _csv_batches(files, opts)
    elif fmt == "parquet":
        batches = _parquet_batches(files, columns, batch_size, dictionary, use_threads)
    elif fmt == "arrow":
        batches = _arrow_batches(files)
    else:
        batches = (b for f in files for b in _read_file(f, fmt, opts, None).to_batches())
    for batch in batches:
        batch = _select(batch, columns, str(source))
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


# --- paths and formats ---------------------------------------------------------------------------


def _resolve(source: str | os.PathLike[str], format: str | None) -> tuple[list[Path], str]:
    """The files ``source`` names, in name order, and their format."""
    text = os.fspath(source)
    fmt = _format_name(format) if format is not None else None
    path = Path(text)
    if isinstance(source, str) and _SQL_START.match(text) and not path.exists():
        raise DataError(
            f"{_short(text)!r} looks like a SQL query, not a path; run queries with "
            "kiln.data.read_sql(query)"
        )
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part[0] in "._" for part in p.relative_to(path).parts)
        )
        if fmt is None:
            files = [p for p in files if _suffix(p) in _EXTENSIONS]
        if not files:
            raise DataError(
                f"{text}: the folder holds no data file (looked for "
                f"{', '.join(sorted(_EXTENSIONS))}, skipping names that start with '.' or '_')"
            )
    elif path.is_file():
        files = [path]
    elif _GLOB_CHARS.search(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"{text}: no file matches this pattern (cwd: {Path.cwd()})")
    else:
        raise DataError(
            f"{text}: the file does not exist (cwd: {Path.cwd()}); check the path, or pass a "
            "glob pattern such as 'data/*.parquet'"
        )
    if fmt is None:
        found = {_format_of(p) for p in files}
        if len(found) > 1:
            raise DataError(
                f"{text}: the files are of several formats ({', '.join(sorted(found))}); "
                "pass a narrower pattern or format="
            )
        fmt = found.pop()
    return files, fmt


def _format_name(format: str) -> str:
    fmt = _ALIASES.get(format.lower().lstrip("."))
    if fmt is None:
        raise DataError(
            f"unsupported format {format!r}; Kiln reads: {', '.join(FORMATS)} "
            "(and data frames, Arrow tables and SQL through read_sql)"
        )
    return fmt


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _format_of(path: Path) -> str:
    fmt = _EXTENSIONS.get(_suffix(path))
    if fmt is None:
        raise DataError(
            f"{path}: unsupported format {path.suffix or '(no extension)'!r}; Kiln reads "
            f"{', '.join(sorted(_EXTENSIONS))} files; pass format= if the extension is wrong"
        )
    return fmt


def _read_file(path: Path, fmt: str, opts: _CsvOptions, columns: Sequence[str] | None) -> pa.Table:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from e
    if size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); nothing to read")
    try:
        if fmt in ("csv", "tsv"):
            table = _read_csv(path, opts)
        elif fmt == "parquet":
            table = _read_parquet(path, columns)
        elif fmt == "jsonl":
            table = _read_jsonl(path)
        else:
            table = _read_arrow(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from e
    _check_unique(table.column_names, str(path))
    return table


def _concat(tables: Sequence[tuple[Path, pa.Table]]) -> pa.Table:
    if len(tables) == 1:
        return tables[0][1]
    schema = tables[0][1].schema
    for path, table in tables[1:]:
        try:
            schema = pa.unify_schemas([schema, table.schema], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise DataError(
                f"{path}: its columns do not agree with the files before it "
                f"({tables[0][0]} first): {e}; read the files apart, or cast them alike"
            ) from e
    return pa.concat_tables([t for _, t in tables], promote_options="permissive")


def _widen_csv(
    tables: Sequence[tuple[Path, pa.Table]], opts: _CsvOptions
) -> list[tuple[Path, pa.Table]]:
    """Several CSV files: re-read those whose inferred types are narrower than another file's.

    A column that is a number in one file and text in another is text in all (as in one file).
    """
    seen: dict[str, pa.DataType] = {}
    for _, table in tables:
        for field in table.schema:
            known = seen.get(field.name)
            if known is None or pa.types.is_null(known):
                seen[field.name] = field.type
            elif known != field.type and not pa.types.is_null(field.type):
                try:
                    merged = pa.unify_schemas(
                        [pa.schema([(field.name, known)]), pa.schema([field])],
                        promote_options="permissive",
                    )
                    seen[field.name] = merged.field(0).type
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    seen[field.name] = pa.string()
    out: list[tuple[Path, pa.Table]] = []
    for path, table in tables:
        types = {
            f.name: seen[f.name]
            for f in table.schema
            if f.type != seen[f.name] and not pa.types.is_null(f.type)
        }
        if types:
            wider = _CsvOptions(
                opts.delimiter, opts.header, opts.null_values, {**opts.column_types, **types}
            )
            table = _read_csv(path, wider)
        out.append((path, table))
    return out


# --- CSV ---------------------------------------------------------------------------------------


class _CsvOptions:
    """The CSV settings for one read, and the pyarrow option objects built from them."""

    def __init__(
        self,
        delimiter: str,
        header: bool,
        null_values: Sequence[str],
        column_types: Mapping[str, pa.DataType],
    ) -> None:
        self.delimiter = delimiter
        self.header = header
        self.null_values = list(null_values)
        self.column_types = dict(column_types)

    @classmethod
    def make(
        cls,
        fmt: str,
        delimiter: str | None,
        header: bool,
        null_values: Sequence[str] | None,
        column_types: Mapping[str, pa.DataType] | None,
    ) -> _CsvOptions:
        if delimiter is None:
            delimiter = "\t" if fmt == "tsv" else ","
        if len(delimiter) != 1:
            raise DataError(f"the CSV delimiter must be one character, not {delimiter!r}")
        if isinstance(null_values, str):
            raise DataError("null_values must be a list of strings, not one string")
        nulls = DEFAULT_NULL_VALUES if null_values is None else null_values
        return cls(delimiter, header, nulls, column_types or {})

    def read(self) -> pa_csv.ReadOptions:
        return pa_csv.ReadOptions(autogenerate_column_names=not self.header)

    def parse(self) -> pa_csv.ParseOptions:
        return pa_csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)

    def convert(self, types: Mapping[str, pa.DataType] | None = None) -> pa_csv.ConvertOptions:
        return pa_csv.ConvertOptions(
            null_values=self.null_values,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            column_types={**self.column_types, **(types or {})},
        )


def _read_csv(path: Path, opts: _CsvOptions) -> pa.Table:
    try:
        table = pa_csv.read_csv(
            path,
            read_options=opts.read(),
            parse_options=opts.parse(),
            convert_options=opts.convert(),
        )
    except pa.ArrowInvalid as e:
        raise _csv_error(path, opts, e) from e
    return _csv_finish(path, opts, table)


def _csv_finish(path: Path, opts: _CsvOptions, table: pa.Table) -> pa.Table:
    """Turn invalid UTF-8 (read as binary) into an error; header-only columns into STRING."""
    for i, field in enumerate(table.schema):
        declared = field.name in opts.column_types
        if pa.types.is_binary(field.type) and not declared:
            raise _utf8_error(path, opts)
        if table.num_rows == 0 and pa.types.is_null(field.type) and not declared:
            table = table.set_column(i, field.with_type(pa.string()), pa.nulls(0, pa.string()))
    return table


def _csv_error(path: Path, opts: _CsvOptions, e: pa.ArrowInvalid) -> DataError:
    message = str(e)
    if "Empty CSV file" in message:
        return DataError(f"{path}: the file is empty (no header, no rows); nothing to read")
    if "Expected" in message and "columns, got" in message:
        return _malformed_row_error(path, opts, message)
    if "invalid UTF8" in message or "invalid UTF-8" in message:
        return _utf8_error(path, opts)
    conversion = re.search(_CONVERSION.pattern + r" invalid value '(.*)'", message)
    if conversion is not None:
        return _conversion_error(path, opts, int(conversion[1]), conversion[2], conversion[3])
    return DataError(f"{path}: cannot read as CSV: {message}")


def _text_records(path: Path, opts: _CsvOptions) -> Iterator[tuple[int, list[str]]]:
    """Each non-empty record of the file with the line it ends on (bytes read as Latin-1)."""
    with path.open(encoding="latin-1", newline="") as fh:
        reader = csv.reader(fh, delimiter=opts.delimiter, quotechar='"', doublequote=True)
        try:
            for record in reader:
                if record:
                    yield reader.line_num, record
        except csv.Error:
            return


def _header(path: Path, opts: _CsvOptions) -> list[str]:
    for _, record in _text_records(path, opts):
        if opts.header:
            return [name.encode("latin-1").decode("utf-8", "replace") for name in record]
        return [f"f{i}" for i in range(len(record))]
    return []


def _malformed_row_error(path: Path, opts: _CsvOptions, message: str) -> DataError:
    expected: int | None = None
    for line, record in _text_records(path, opts):
        if expected is None:
            expected = len(record)
        elif len(record) != expected:
            shown = opts.delimiter.join(record)
            return DataError(
                f"{path}, line {line}: expected {expected} fields (as in the "
                f"{'header' if opts.header else 'first row'}), found {len(record)}: "
                f"{_short(shown)!r}; fix the row, or quote fields that hold "
                f"the delimiter {opts.delimiter!r}"
            )
    return DataError(f"{path}: a row has the wrong number of fields: {message}")


def _utf8_error(path: Path, opts: _CsvOptions | None) -> DataError:
    """An error naming the first bytes of ``path`` that are not UTF-8: line, offset, column."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with path.open("rb") as fh:
        for raw in fh:
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as e:
                bad = offset + e.start
                column = ""
                if opts is not None:
                    prefix = raw[: e.start].decode("latin-1")
                    fields = next(csv.reader([prefix], delimiter=opts.delimiter), [""])
                    names = _header(path, opts)
                    index = max(len(fields) - 1, 0)
                    name = names[index] if index < len(names) else f"#{index + 1}"
                    column = f", column {name!r}"
                return DataError(
                    f"{path}, line {line}{column} (byte offset {bad}): bytes that are not "
                    f"valid UTF-8 ({raw[e.start : e.end].hex(' ')}); re-save the file as UTF-8, "
                    "e.g. iconv -f latin1 -t utf-8"
                )
            offset += len(raw)
            line += 1
    return DataError(f"{path}: the file holds bytes that are not valid UTF-8; re-save it as UTF-8")


def _conversion_error(
    path: Path, opts: _CsvOptions, index: int, type_name: str, value: str
) -> DataError:
    names = _header(path, opts)
    name = names[index] if index < len(names) else f"#{index + 1}"
    where = f"{path}, column {name!r}"
    row = _first_bad_row(path, opts, name)
    if row is not None:
        lines = [line for line, _ in _text_records(path, opts)]
        record = row + (1 if opts.header else 0)
        if record < len(lines):
            where = f"{path}, line {lines[record]}, column {name!r}"
    hint = "declared in column_types" if name in opts.column_types else "inferred"
    return DataError(
        f"{where}: {value!r} is not a valid {type_name} (the type {hint} for the column); "
        "fix the value, add it to null_values, or declare the column as a string"
    )


def _first_bad_row(path: Path, opts: _CsvOptions, name: str) -> int | None:
    """The index of the first data row whose ``name`` does not cast to its declared type."""
    target = opts.column_types.get(name)
    if target is None:
        return None
    try:
        text = pa_csv.read_csv(
            path,
            read_options=opts.read(),
            parse_options=opts.parse(),
            convert_options=opts.convert({name: pa.string()}),
        ).column(name)
    except (pa.ArrowInvalid, KeyError):
        return None
    low, high = 0, len(text)
    if _casts(text, target):
        return None
    while high - low > 1:  # the first bad row is in [low, high)
        mid = (low + high) // 2
        if _casts(text.slice(low, mid - low), target):
            low = mid
        else:
            high = mid
    return low


def _casts(values: pa.ChunkedArray, target: pa.DataType) -> bool:
    try:
        values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


# Arrow's conversion error; with one CPU thread (OMP_NUM_THREADS=1) it also names the row.
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\S+?):")


def _csv_types(files: Sequence[Path], opts: _CsvOptions) -> dict[str, pa.DataType]:
    """Each column's type over all ``files``, streaming: a type that fails is widened, retried."""
    types: dict[str, pa.DataType] = {}
    for path in files:
        names = _header(path, opts)
        while True:
            try:
                reader = pa_csv.open_csv(
                    path,
                    read_options=opts.read(),
                    parse_options=opts.parse(),
                    convert_options=opts.convert(types),
                )
                for _ in reader:
                    pass
            except pa.ArrowInvalid as e:
                failed = _CONVERSION.search(str(e))
                if failed is None:
                    raise _csv_error(path, opts, e) from e
                index = int(failed[1])
                name = names[index] if index < len(names) else None
                if name is None or name in opts.column_types:
                    raise _csv_error(path, opts, e) from e
                types[name] = _WIDER.get(failed[2], pa.string())
                continue
            for field in reader.schema:
                if pa.types.is_binary(field.type) and field.name not in opts.column_types:
                    raise _utf8_error(path, opts)
                known = types.get(field.name)
                if known is not None and known != field.type:
                    types[field.name] = (
                        pa.unify_schemas(
                            [pa.schema([(field.name, known)]), pa.schema([field])],
                            promote_options="permissive",
                        )
                        .field(0)
                        .type
                    )
                elif known is None and not pa.types.is_null(field.type):
                    types[field.name] = field.type
            break
    return types


def _csv_batches(files: Sequence[Path], opts: _CsvOptions) -> Iterator[pa.RecordBatch]:
    for path in files:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (0 bytes); nothing to read")
    types = _csv_types(files, opts)
    schema: pa.Schema | None = None
    for path in files:
        try:
            reader = pa_csv.open_csv(
                path,
                read_options=opts.read(),
                parse_options=opts.parse(),
                convert_options=opts.convert(types),
            )
            _check_unique(reader.schema.names, str(path))
            if schema is None:
                schema = reader.schema
            elif reader.schema.names != schema.names:
                raise DataError(
                    f"{path}: its columns ({', '.join(reader.schema.names)}) differ from "
                    f"{files[0]}'s ({', '.join(schema.names)})"
                )
            for batch in reader:
                yield batch.cast(schema) if batch.schema != schema else batch
        except pa.ArrowInvalid as e:
            raise _csv_error(path, opts, e) from e


# --- Parquet, JSON Lines, Arrow IPC --------------------------------------------------------------


def _read_parquet(path: Path, columns: Sequence[str] | None) -> pa.Table:
    try:
        names = pq.read_schema(path).names
        _check_unique(names, str(path))
        if columns is not None and all(c in names for c in columns):
            return pq.read_table(path, columns=list(columns))
        return pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from e


def _parquet_batches(
    files: Sequence[Path],
    columns: Sequence[str] | None,
    batch_size: int,
    dictionary: Sequence[str] = (),
    use_threads: bool = True,
) -> Iterator[pa.RecordBatch]:
    try:
        schemas = [pq.read_schema(f) for f in files]
    except pa.ArrowInvalid as e:
        raise DataError(f"not a readable Parquet file ({e})") from e
    for f, s in zip(files, schemas, strict=True):
        _check_unique(s.names, str(f))
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{files[0].parent}: the Parquet files' columns do not agree ({e})") from e
    as_dictionary = _small_dictionaries(files[0], schema, dictionary)
    for name in as_dictionary:
        i = schema.get_field_index(name)
        schema = schema.set(i, schema.field(i).with_type(pa.dictionary(pa.int32(), pa.string())))
    for path, file_schema in zip(files, schemas, strict=True):
        names = file_schema.names
        wanted = list(columns) if columns is not None and all(c in names for c in columns) else None
        # pre_buffer=False and a read buffer: Arrow then decodes page by page instead of holding
        # the file's column chunks (10M rows streamed in 0.3 GB instead of 1.2 GB).
        with pq.ParquetFile(
            path,
            pre_buffer=False,
            buffer_size=1 << 20,
            read_dictionary=[n for n in as_dictionary if n in names] or None,
        ) as pf:
            for batch in pf.iter_batches(
                batch_size=batch_size, columns=wanted, use_threads=use_threads
            ):
                if wanted is None and batch.schema != schema:
                    # a file without some of the folder's columns: null there (as read_table)
                    table = pa.Table.from_batches([batch])
                    table = pa.table(
                        {
                            f.name: table[f.name]
                            if f.name in table.column_names
                            else pa.nulls(table.num_rows, f.type)
                            for f in schema
                        }
                    ).cast(schema)
                    if columns is not None:
                        table = table.select(list(columns))
                    yield from table.combine_chunks().to_batches()
                else:
                    yield batch


_SMALL_DICTIONARY_BYTES = 64 << 10
_PLAIN_STRING_BYTES = 4  # a plain Parquet string is its length (4 bytes), then its bytes


def _small_dictionaries(path: Path, schema: pa.Schema, names: Sequence[str]) -> list[str]:
    """Those of ``names`` that are string columns of ``schema`` and that ``path``'s first row
    group stores as a dictionary page under 64 KiB and fewer than 4 bytes a row in all. A value
    written out plainly takes 4 bytes or more, so a column of mostly distinct values, or one
    whose dictionary the writer gave up on, is never one of them: spelling its values out costs
    no more than decoding a dictionary as large as the batch. The answer from the first file
    holds for all files, so that every batch has one schema."""
    wanted = {n for n in names if n in schema.names and pa.types.is_string(schema.field(n).type)}
    if not wanted:
        return []
    metadata = pq.read_metadata(path)
    if metadata.num_row_groups == 0:
        return []
    group = metadata.row_group(0)
    chunks = (group.column(i) for i in range(group.num_columns))
    return [
        c.path_in_schema
        for c in chunks
        if c.path_in_schema in wanted
        and c.has_dictionary_page
        and c.dictionary_page_offset
        and c.data_page_offset - c.dictionary_page_offset < _SMALL_DICTIONARY_BYTES
        and c.total_uncompressed_size < _PLAIN_STRING_BYTES * c.num_values
    ]


def _read_jsonl(path: Path) -> pa.Table:
    _check_utf8(path)
    try:
        table = pa_json.read_json(path)
    except pa.ArrowInvalid as e:
        message = str(e)
        if "Empty JSON file" in message:
            raise DataError(f"{path}: the file is empty (only blank space); nothing to read") from e
        found = re.search(r"in row (\d+)", message)
        line = _nth_nonblank_line(path, int(found[1])) if found else None
        where = f"{path}, line {line}" if line is not None else str(path)
        changed = re.search(r"Column\((.*?)\) changed from (\w+) to (\w+)", message)
        if changed is not None:
            column = changed[1].lstrip("/")
            raise DataError(
                f"{where}, column {column!r}: a {changed[3]} where the lines before hold "
                f"{changed[2]}s; a JSON Lines column must keep one type (quote the numbers, "
                "or fix the value)"
            ) from e
        detail = re.sub(r"^JSON parse error: |\s*in row \d+$", "", message)
        raise DataError(
            f"{where}: not valid JSON ({detail}); each line must be one JSON object"
        ) from e
    if table.num_columns == 0 and table.num_rows == 0:
        raise DataError(f"{path}: the file is empty (only blank space); nothing to read")
    return table


def _nth_nonblank_line(path: Path, n: int) -> int | None:
    """The line number (1-based) of the ``n``-th (0-based) line that holds something."""
    seen = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                if seen == n:
                    return number
                seen += 1
    return None


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_TEXT_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            raise _utf8_error(path, None) from e


def _read_arrow(path: Path) -> pa.Table:
    try:
        return pa_feather.read_table(path)
    except pa.ArrowInvalid:
        pass
    try:
        with pa.memory_map(str(path)) as source:
            return pa_ipc.open_stream(source).read_all()
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: not an Arrow IPC (Feather) file or stream ({e})") from e


def _arrow_batches(files: Sequence[Path]) -> Iterator[pa.RecordBatch]:
    for path in files:
        try:
            with pa.memory_map(str(path)) as source:
                reader = pa_ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
        except pa.ArrowInvalid:
            yield from _read_arrow(path).to_batches()


# --- in-memory sources ---------------------------------------------------------------------------


def _describe(source: object) -> str:
    kind = type(source)
    return f"{kind.__module__.split('.')[0]} {kind.__name__}"


def _from_object(source: object, where: str) -> pa.Table:
    module = type(source).__module__.split(".")[0]
    if isinstance(source, pa.Table):
        table = source
    elif isinstance(source, pa.RecordBatch):
        table = pa.Table.from_batches([source])
    elif isinstance(source, pa.RecordBatchReader):
        table = source.read_all()
    elif module == "pandas" and hasattr(source, "columns"):
        table = _from_pandas(source, where)
    elif module == "polars" and hasattr(source, "collect"):
        table = _from_polars(source.collect(), where)
    elif module == "polars" and hasattr(source, "to_arrow"):
        table = _from_polars(source, where)
    else:
        raise DataError(
            f"cannot read a {where}: pass a path, a glob pattern, a pandas or Polars DataFrame, "
            "or an Arrow table"
        )
    _check_unique(table.column_names, where)
    return table


def _from_pandas(df: Any, where: str) -> pa.Table:
    _check_unique([str(c) for c in df.columns], where)
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
        for position, name in enumerate(df.columns):
            try:
                pa.array(df[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise DataError(_mixed_message(df[name], name, position, where)) from e
        raise DataError(f"{where}: cannot convert to Arrow: {e}") from e


def _mixed_message(column: Any, name: object, position: int, where: str) -> str:
    first: type | None = None
    for row, value in enumerate(column.tolist()):
        if value is None or value != value:  # None, NaN
            continue
        if first is None:
            first = type(value)
        elif type(value) is not first and not (
            isinstance(value, int | float) and issubclass(first, int | float)
        ):
            return (
                f"{where}, row {row} (df.iloc[{row}]), column {name!r}: a {type(value).__name__} "
                f"({_short(repr(value))}) among {first.__name__} values; a column must hold one "
                f"type (convert it, e.g. df[{name!r}].astype(str))"
            )
    return f"{where}, column {name!r} (#{position + 1}): values of mixed types; convert the column"


def _from_polars(df: Any, where: str) -> pa.Table:
    try:
        table = df.to_arrow()
    except Exception as e:  # any Polars error is a data problem here
        raise DataError(f"{where}: cannot convert to Arrow: {e}") from e
    assert isinstance(table, pa.Table)
    return table


# --- shared checks -------------------------------------------------------------------------------


def _check_unique(names: Sequence[str], where: str) -> None:
    first: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first:
            raise DataError(
                f"{where}: column name {name!r} appears twice (columns {first[name]} and "
                f"{position}); rename one of them"
            )
        first[name] = position


def _select(table: pa.Table | pa.RecordBatch, columns: Sequence[str] | None, where: str) -> Any:
    if columns is None:
        return table
    if isinstance(columns, str):
        raise DataError("columns must be a list of column names, not one string")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(
            f"{where}: no column {', '.join(map(repr, missing))}; the columns are: "
            f"{', '.join(table.column_names)}"
        )
    return table.select(list(columns))


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
