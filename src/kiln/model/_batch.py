"""Batch prediction: a file (or folder) of rows in, a file of predictions out, in bounded memory.

::

    predict_batches(model, "data/score/", "out/predictions.parquet", keep=["customer_id"])

The input is streamed in batches of ``batch_size`` rows (:func:`kiln.data.iter_batches` for
Parquet, CSV and Arrow files and folders; :func:`pyarrow.json.open_json` block by block for JSON
Lines, which ``iter_batches`` would read whole), each batch goes through what
:meth:`Model.predict` does (the one prediction path, chunk by chunk as it goes) and is appended
to the output. Memory stays flat: at most five batches in
flight (one being read, one predicted, one written, and one waiting between each two stages).

Choices, and why:

* **Atomic output.** Rows are written to a hidden temporary file beside ``output`` (same folder,
  hence same file system) and renamed into place with :func:`os.replace` once the last batch is
  written. An error or Ctrl-C on any batch deletes the temporary file: nothing appears at
  ``output``, and with ``overwrite=True`` the old file stays as it was.
* **Checked up front.** The output format, an existing output, the ``keep`` columns and the
  model's input columns are checked against the first batch before anything is written.
* **Output columns**: the ``keep`` columns first, as read, then the model's prediction columns.
  Parquet and JSON Lines hold the class probabilities (a list of ``{label, prob}``) as they are;
  CSV cannot hold lists, so list and struct columns are written as JSON text in CSV.
* **Rows are named in the whole input.** A number sent as text that does not parse (a CSV column
  turned to text by one bad value) is an error naming the column, the value and its row counted
  over the whole input, not within its batch; any other error from the model names the rows of
  the batch it came from.
* **Only what is needed is read and encoded.** Parquet input is read for the model's and the
  ``keep`` columns only (1,000,000 rows of the benchmark's 22 columns: 0.33 s -> 0.26 s).
  Parquet output is Snappy-compressed with dictionary encoding for all but floating-point
  columns: a million distinct probabilities only make the writer try a dictionary and drop it
  (writing 1,000,000 classifier predictions: 0.31 s -> 0.15 s), and Snappy shrinks such
  near-random numbers by 3% for a quarter of the write time, so they are stored uncompressed.
* **Class labels are written as dictionaries.** The model hands the writer its predicted labels
  and the probabilities' labels as dictionary arrays over its classes (``Model._answer``'s
  ``dictionary``), which Parquet stores as they are instead of hashing 3,000,000 strings per
  1,000,000 rows of a two-class model; the file's Arrow schema declares them as the strings
  :meth:`Model.predict` gives, so every reader gets those back. CPU to write 1,000,000
  ``logistic_reg`` predictions, these two bullets together: 0.20 s -> 0.12 s.
* **Categories stay codes.** The model's string inputs are read as dictionary arrays where
  Parquet stores them with a small dictionary (:func:`kiln.data.iter_batches`' ``dictionary=``):
  the strings are never spelled out per row, and the model looks each category up once per
  dictionary entry. On the benchmark's 8 string columns: reading 0.19 s -> 0.11 s, the
  ``logistic_reg`` transform and prediction 0.42 s -> 0.31 s (1,000,000 rows).
* **Read, predict and write overlap.** The next batch is read (and checked) on one thread
  (:func:`kiln._threads.prefetched`) and the last one written on another
  (:class:`kiln._threads.Drain`) while this one is transformed and predicted; Arrow and the
  estimators release the GIL, so on two cores the slowest stage sets the pace. With NumPy's
  BLAS held to one thread (``KILN_THREADS``, as :meth:`Model.predict` does), and the labels
  and numbers written as above, ``bench/batch_predict.py`` measures 0.95-1.04x of in-memory
  ``Model.predict`` for ``boosted_tree_regressor`` and 0.91-1.03x for ``logistic_reg`` (five
  runs; 0.75x and 0.44x before any of this). A ``logistic_reg`` prediction costs about what
  reading and writing its rows cost, so what is left to win is in those.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from kiln._threads import Drain, blas_threads, prefetched
from kiln.errors import DataError

if TYPE_CHECKING:
    from kiln.model._model import Model

__all__ = ["PREDICTION_FORMATS", "PredictionSummary", "predict_batches"]

PREDICTION_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
"""The formats :func:`predict_batches` writes (``format=``, or from the output's extension)."""

_OUTPUT_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_JSONL_EXTENSIONS = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class PredictionSummary:
    """What :func:`predict_batches` did: ``rows`` predicted in ``seconds``, into ``output``."""

    rows: int
    seconds: float
    output: Path

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def predict_batches(
    model: Model,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    format: str | None = None,
    batch_size: int = 65_536,
    keep: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> PredictionSummary:
    """Predict every row of ``source`` with ``model`` and write the predictions to ``output``.

    ``source`` is a Parquet, CSV, JSON Lines or Arrow file, a folder of them or a glob pattern (as
    :func:`kiln.data.read_table` takes). ``format`` is one of :data:`PREDICTION_FORMATS` (default:
    from ``output``'s extension). ``keep`` names input columns copied to the output ahead of the
    predictions (an id, say). ``progress`` is called after each batch with the number of rows
    predicted so far. An existing ``output`` is refused unless ``overwrite``.

    The output is complete or absent: see the module's notes. Raises
    :class:`~kiln.errors.DataError` naming the file, column and row for anything wrong.
    """
    started = time.perf_counter()
    final = Path(output)
    if final.is_dir():
        raise DataError(f"output {final} is a folder; name a file in it, e.g. {final}/out.parquet")
    fmt = _output_format(final, format)
    if isinstance(keep, str):
        raise DataError("keep must be a list of column names, not one string")
    kept = list(keep)
    for name in kept:
        if kept.count(name) > 1:
            raise DataError(f"keep column {name!r} is named twice; name each column once")
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, not {batch_size}")
    if final.exists() and not overwrite:
        raise DataError(
            f"output {final} already exists; choose another path or overwrite it "
            "(--overwrite, overwrite=True)"
        )

    features = [str(c["name"]) for c in model.signature]
    needed = kept + [c for c in features if c not in kept]
    categories = [
        str(c["name"]) for c in model.signature if c["type"] == "string" and c["name"] not in kept
    ]
    batches = _batches(source, batch_size, needed, categories)
    try:
        first = next(batches, None)
    except DataError:
        # a column is missing (or the input is unreadable): name it against all the columns
        everything = next(_batches(source, batch_size, None), None)
        if everything is not None:
            _check_columns(everything.schema, source, kept, model)
        raise
    if first is None:
        raise DataError(f"{source}: the input has no rows; nothing to predict")
    _check_columns(first.schema, source, kept, model)
    for name in kept:
        if name in _prediction_names(model):
            raise DataError(
                f"keep column {name!r} has the name of a prediction column; rename it in the input"
            )

    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(final)
    rows = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            writer = _Writer(fmt, sink, encoded=_prediction_names(model))
            try:
                stream = prefetched(
                    _prepared(model, _chain(first, batches, source), needed, source),
                    name="kiln-predict-read",
                )
                with (
                    contextlib.closing(stream),
                    Drain(writer.write, name="kiln-predict-write") as drain,
                    blas_threads(),
                ):
                    for selected in stream:
                        predictions = _predicted(model, selected, rows, source, fmt == "parquet")
                        drain.put(
                            pa.Table.from_arrays(
                                [*(selected.column(k) for k in kept), *predictions.columns],
                                names=[*kept, *predictions.column_names],
                            )
                        )
                        rows += selected.num_rows
                        if progress is not None:
                            progress(rows)
            except BaseException:
                writer.abort()
                raise
            writer.close()
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PredictionSummary(rows, time.perf_counter() - started, final)


# --- input ---------------------------------------------------------------------------------------


def _batches(
    source: str | os.PathLike[str],
    batch_size: int,
    columns: Sequence[str] | None,
    dictionary: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    """The input's batches; only ``columns`` (all when None) where the format can skip others,
    the ``dictionary`` ones as dictionary arrays where Parquet has them so."""
    jsonl = _jsonl_files(source)
    if jsonl:
        return _jsonl_batches(jsonl, batch_size)
    from kiln.data import iter_batches

    # decoded on the reading thread alone: predicting and writing have the other core
    return iter_batches(
        source, batch_size=batch_size, columns=columns, dictionary=dictionary, use_threads=False
    )


def _jsonl_files(source: str | os.PathLike[str]) -> list[Path]:
    """The JSON Lines files ``source`` names (a file, or a folder holding only them), else []."""
    path = Path(source)
    if path.is_file():
        return [path] if path.suffix.lower() in _JSONL_EXTENSIONS else []
    if not path.is_dir():
        return []
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part[0] in "._" for part in p.relative_to(path).parts)
    )
    if files and all(p.suffix.lower() in _JSONL_EXTENSIONS for p in files):
        return files
    return []


def _jsonl_batches(files: Sequence[Path], batch_size: int) -> Iterator[pa.RecordBatch]:
    """JSON Lines, streamed block by block; types come from each file's first block."""
    import pyarrow.json as pa_json

    schema: pa.Schema | None = None
    for path in files:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (0 bytes); nothing to read")
        seen = 0
        try:
            reader = pa_json.open_json(path)
            for batch in reader:
                if schema is None:
                    schema = batch.schema
                elif batch.schema != schema:
                    batch = batch.cast(schema)
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
                seen += batch.num_rows
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
            raise _jsonl_error(path, seen, str(e)) from e


def _jsonl_error(path: Path, seen: int, message: str) -> DataError:
    """Arrow's JSON error, its row (counted within the block that failed) made a row of the file."""
    found = re.search(r"in row (\d+)", message)
    where = f"{path}, row {seen + int(found[1]) + 1} (counting from 1)" if found else str(path)
    changed = re.search(r"Column\((.*?)\) changed from (\w+) to (\w+)", message)
    if changed is not None:
        return DataError(
            f"{where}, column {changed[1].lstrip('/')!r}: a {changed[3]} where the rows before "
            f"hold {changed[2]}s; a JSON Lines column must keep one type (fix the value)"
        )
    return DataError(f"{where}: not valid JSON Lines ({message}); each line must be one object")


def _chain(
    first: pa.RecordBatch, rest: Iterator[pa.RecordBatch], source: str | os.PathLike[str]
) -> Iterator[pa.RecordBatch]:
    """``first``, then ``rest``, an engine's error while reading turned into a DataError."""
    yield first
    rows = first.num_rows
    while True:
        try:
            batch = next(rest)
        except StopIteration:
            return
        except (pa.ArrowException, ValueError) as e:  # e.g. a later file without a column
            raise DataError(
                f"{source}: cannot read the input after its first {rows:,} rows: {e}; check that "
                "every file has the columns and types of the first"
            ) from e
        rows += batch.num_rows
        yield batch


def _check_columns(
    schema: pa.Schema, source: str | os.PathLike[str], keep: Sequence[str], model: Model
) -> None:
    available = ", ".join(schema.names)
    missing = [k for k in keep if k not in schema.names]
    if missing:
        raise DataError(
            f"{source}: no column {', '.join(map(repr, missing))} to keep; the input's columns "
            f"are: {available}"
        )
    for column in model.signature:
        if column["name"] not in schema.names:
            raise DataError(
                f"{source}: the input is missing column {column['name']!r} ({column['type']}), "
                f"which the model was trained with; add it (null where unknown). The input's "
                f"columns are: {available}"
            )


# --- prediction ----------------------------------------------------------------------------------


def _prediction_names(model: Model) -> list[str]:
    """The columns Model.predict returns, known before predicting (for the name-clash check)."""
    name = model.prediction_column
    if model.task == "regression":
        return [name]
    if model.task == "classification":
        return [name, f"{name}_probs"]
    if model.task == "clustering":
        return ["centroid_id", "nearest_centroids_distance"]
    return []  # PCA: principal_component_<i>, as many as the model has


def _prepared(
    model: Model,
    batches: Iterator[pa.RecordBatch],
    needed: Sequence[str],
    source: str | os.PathLike[str],
) -> Iterator[pa.Table]:
    """Each batch's ``needed`` columns, numbers sent as text parsed, checked against the model's
    inputs: the reading thread's share of the work. The transform stays on the predicting
    thread: moved here, it made this thread the slowest for ``logistic_reg`` (reading and
    transforming 1,000,000 rows: 0.31 s of CPU, against 0.11 s left to predict)."""
    offset = 0
    for batch in batches:
        table = _conform(pa.Table.from_batches([batch.select(needed)]), model, offset, source)
        with _rows_named(source, offset, table.num_rows):
            model._validate(table)
        yield table
        offset += table.num_rows


def _predicted(
    model: Model, table: pa.Table, offset: int, source: str | os.PathLike[str], dictionary: bool
) -> pa.Table:
    """:meth:`Model.predict` of one checked batch, chunk by chunk as it goes (``dictionary``:
    class labels as dictionary arrays, for the Parquet writer)."""
    with _rows_named(source, offset, table.num_rows):
        return model._predict_chunked(table, dictionary=dictionary)


@contextlib.contextmanager
def _rows_named(source: str | os.PathLike[str], offset: int, rows: int) -> Iterator[None]:
    """A DataError from the model, prefixed with the input's rows it came from."""
    try:
        yield
    except DataError as e:
        last = offset + rows
        raise DataError(f"{source}, rows {offset + 1}–{last} (counting from 1): {e}") from e


def _conform(
    batch: pa.Table, model: Model, offset: int, source: str | os.PathLike[str]
) -> pa.Table:
    """Numbers sent as text (a CSV column with one bad value reads as text) parsed here, where the
    first value that does not parse can be named by its row in the whole input."""
    for column in model.signature:
        name = str(column["name"])
        if not _numeric_type_name(str(column["type"])):
            continue
        index = batch.schema.get_field_index(name)
        values = batch.column(index)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        try:
            parsed = values.cast(pa.float64())
        except pa.ArrowInvalid:
            row = _first_unparsable(values)
            raise DataError(
                f"{source}, row {offset + row + 1} (counting from 1, a header not counted), "
                f"column {name!r}: expected a number ({column['type']}, as the model was trained "
                f"with), found the string {values[row].as_py()!r}; fix the value or leave it empty"
            ) from None
        batch = batch.set_column(index, pa.field(name, pa.float64()), parsed)
    return batch


def _numeric_type_name(type_name: str) -> bool:
    return type_name.startswith(("int", "uint", "float", "double", "halffloat", "decimal"))


def _first_unparsable(values: pa.Array) -> int:
    """The index of the first value that does not cast to a number (the cast of all failed)."""
    low, high = 0, len(values)  # the first bad value is in [low, high)
    while high - low > 1:
        mid = (low + high) // 2
        try:
            values.slice(low, mid - low).cast(pa.float64())
        except pa.ArrowInvalid:
            high = mid
        else:
            low = mid
    return low


# --- output --------------------------------------------------------------------------------------


def _temporary(final: Path) -> tuple[int, Path]:
    """A new hidden file beside ``final``, opened for writing, with the permissions a plain new
    file gets (``tempfile.mkstemp``'s would be owner-only)."""
    while True:
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _output_format(output: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        fmt = {"pq": "parquet", "ndjson": "jsonl", "json": "jsonl"}.get(fmt, fmt)
        if fmt not in PREDICTION_FORMATS:
            raise DataError(
                f"unsupported output format {format!r}; choose {', '.join(PREDICTION_FORMATS)}"
            )
        return fmt
    found = _OUTPUT_EXTENSIONS.get(output.suffix.lower())
    if found is None:
        raise DataError(
            f"{output}: cannot tell the output format from the extension "
            f"{output.suffix or '(none)'!r}; name the file .parquet, .csv or .jsonl, or pass "
            f"the format ({', '.join(PREDICTION_FORMATS)})"
        )
    return found


class _Writer:
    """Appends tables to an open binary file as Parquet, CSV or JSON Lines.

    ``encoded``: columns whose dictionary arrays are an encoding only (the model's class labels,
    see ``Model._answer``): Parquet stores their indices as they are, with no per-row hashing,
    and the file's Arrow schema declares the values' type, so that every reader gets back what
    :meth:`Model.predict` gives."""

    def __init__(self, fmt: str, sink: IO[bytes], *, encoded: Sequence[str] = ()) -> None:
        self.fmt = fmt
        self.sink = sink
        self.encoded = set(encoded)
        self._writer: Any = None
        self._declared: pa.Schema | None = None  # the Arrow schema to store, where not the input's
        self._decode_to: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "jsonl":
            import polars as pl

            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            frame.write_ndjson(self.sink)
            return
        if self.fmt == "csv":
            table = _csv_ready(table)
        if self._writer is None:
            self._writer = self._open(table.schema)
        if self._decode_to is not None:
            table = table.cast(self._decode_to)
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema) -> Any:
        if self.fmt == "csv":
            import pyarrow.csv as pa_csv

            return pa_csv.CSVWriter(self.sink, schema)
        import pyarrow.parquet as pq

        # Floating-point values are written plainly and uncompressed: a million distinct
        # predicted numbers only make the writer try a dictionary and give it up (half the write
        # time), and snappy shrinks such near-random bits by ~3% for a quarter of the write time.
        # Everything else is dictionary-encoded and compressed.
        floats = [p for f in schema for p in _leaf_paths(f.name, f.type, floats=True)]
        others = [p for f in schema for p in _leaf_paths(f.name, f.type, floats=False)]
        declared = pa.schema(
            [f.with_type(_decoded_type(f.type)) if f.name in self.encoded else f for f in schema]
        )
        if not declared.equals(schema):
            if hasattr(pq.ParquetWriter, "add_key_value_metadata"):
                self._declared = declared  # stored at close
            else:  # an older pyarrow: decode each table instead
                self._decode_to = schema = declared
        return pq.ParquetWriter(
            self.sink,
            schema,
            compression={**dict.fromkeys(others, "snappy"), **dict.fromkeys(floats, "none")},
            use_dictionary=others,
            store_schema=self._declared is None,
        )

    def close(self) -> None:
        if self._writer is not None:
            if self._declared is not None:
                # what pyarrow itself stores (store_schema): the IPC-serialised schema, base64
                serialized = base64.b64encode(self._declared.serialize().to_pybytes())
                self._writer.add_key_value_metadata({"ARROW:schema": serialized.decode()})
            self._writer.close()

    def abort(self) -> None:
        """Close after an error, quietly: the file is about to be deleted."""
        with contextlib.suppress(Exception):
            self.close()


def _decoded_type(t: pa.DataType) -> pa.DataType:
    """``t`` with each dictionary type in it, at any depth, replaced by its values' type."""
    if pa.types.is_dictionary(t):
        return _decoded_type(t.value_type)
    if pa.types.is_struct(t):
        return pa.struct(
            [t.field(i).with_type(_decoded_type(t.field(i).type)) for i in range(t.num_fields)]
        )
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_decoded_type(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_decoded_type(t.value_type)))
    return t


def _leaf_paths(path: str, t: pa.DataType, *, floats: bool) -> Iterator[str]:
    """The Parquet column paths under a field (``a.list.element.b``): floating-point ones only
    if ``floats``, the others only if not."""
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            child = t.field(i)
            yield from _leaf_paths(f"{path}.{child.name}", child.type, floats=floats)
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _leaf_paths(f"{path}.list.element", t.value_type, floats=floats)
    elif pa.types.is_map(t):
        yield from _leaf_paths(f"{path}.key_value.key", t.key_type, floats=floats)
        yield from _leaf_paths(f"{path}.key_value.value", t.item_type, floats=floats)
    elif pa.types.is_floating(t) == floats:
        yield path


def _csv_ready(table: pa.Table) -> pa.Table:
    """Lists and structs as JSON text, dictionaries decoded: what a CSV cell can hold."""
    for i, field in enumerate(table.schema):
        t = field.type
        if pa.types.is_dictionary(t):
            table = table.set_column(i, field.with_type(t.value_type), table[i].cast(t.value_type))
        elif pa.types.is_nested(t):
            table = table.set_column(i, field.with_type(pa.string()), _json_text(table[i]))
    return table


def _json_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each value of a nested column as its JSON text (null stays null)."""
    import polars as pl

    frame = pl.from_arrow(pa.table({"v": column}))
    assert isinstance(frame, pl.DataFrame)
    encoded = frame.select(
        pl.when(pl.col("v").is_null())
        .then(None)
        .otherwise(
            pl.struct(pl.col("v"))
            .struct.json_encode()
            .str.strip_prefix('{"v":')
            .str.strip_suffix("}")
        )
    ).to_series()
    return pa.chunked_array([encoded.to_arrow().cast(pa.string())])
