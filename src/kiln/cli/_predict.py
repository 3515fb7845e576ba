"""``kiln predict``: a model over a file or folder of rows, predictions streamed to a file.

The work is :func:`kiln.model.predict_batches`; this module finds the model (a folder, or a
registry URI ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``), draws the progress bar (on
stderr, only when stderr is a terminal and ``--quiet`` is not given) and prints the one-line
summary.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import Task

    from kiln.model import Model, PredictionSummary

__all__ = ["load_model", "predict"]

REGISTRY_PREFIX = "models:/"


def load_model(uri: str) -> Model:
    """A registry URI (``models:/…``) through the registry; anything else is a model folder."""
    from kiln.errors import DataError

    if uri.startswith(REGISTRY_PREFIX):
        from kiln.registry import load_model as load_registered

        return load_registered(uri)
    from kiln.model import Model

    path = Path(uri)
    if not path.exists():
        raise DataError(
            f"model folder {path} does not exist; pass the folder Model.save wrote, or a registry "
            "URI (models:/NAME@ALIAS or models:/NAME/VERSION)"
        )
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; pass a model folder or a models:/ URI")
    return Model.load(path)


def predict(
    model_uri: str,
    data: str,
    output: Path,
    *,
    output_format: str | None,
    batch_size: int,
    keep: Sequence[str],
    overwrite: bool,
    quiet: bool,
    console: Console,
) -> PredictionSummary:
    """Run the batch prediction; print the summary line on ``console``."""
    from kiln.model import predict_batches

    model = load_model(model_uri)
    show = not quiet and _stderr_is_terminal()
    with _progress(show, _parquet_rows(data)) as progress:
        summary = predict_batches(
            model,
            data,
            output,
            format=output_format,
            batch_size=batch_size,
            keep=keep,
            progress=progress,
            overwrite=overwrite,
        )
    console.print(
        f"predicted {summary.rows:,} rows in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s) -> {escape(str(summary.output))}"
    )
    return summary


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _parquet_rows(data: str) -> int | None:
    """The row count from Parquet footers (a file or a folder of them), for the bar's total."""
    path = Path(data)
    files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
    files = [f for f in files if f.is_file() and not f.name.startswith((".", "_"))]
    if not files or any(f.suffix.lower() not in (".parquet", ".pq") for f in files):
        return None
    import pyarrow.parquet as pq

    try:
        return int(sum(pq.ParquetFile(f).metadata.num_rows for f in files))
    except (OSError, ValueError):  # pyarrow's errors derive from these
        return None  # predict_batches says what is wrong with the file


@contextmanager
def _progress(show: bool, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr (rows, rows/s), or nothing when ``show`` is false."""
    if not show:
        yield None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "– rows/s")

    stderr = Console(stderr=True)
    with Progress(
        TextColumn("predicting"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        RowsPerSecond(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("predict", total=total)

        def advance(rows: int) -> None:
            bar.update(task, completed=rows)

        yield advance
