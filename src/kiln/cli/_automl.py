"""``kiln automl``: the best model for a table and a target in a time budget, from the shell.

A live line shows the best score so far, the candidates tried and the time left; the leaderboard
and where the model was saved are printed at the end. It needs no workspace: it reads a data file
and writes a model folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from kiln.errors import DataError

if TYPE_CHECKING:
    from kiln.automl import AutoMLResult, Progress

__all__ = ["automl"]


def automl(
    data: str,
    *,
    target: str,
    time_budget: float,
    metric: str | None,
    task: str,
    exclude: list[str],
    out: Path | None,
    seed: int,
    console: Console,
    ensemble: bool = True,
    infer_limit: float | None = None,
) -> Path:
    """Run the search with a live status line; print the leaderboard; save the model."""
    from rich.live import Live

    from kiln.automl import AutoMLWarning, fit
    from kiln.data import read_table

    folder = out or Path(f"automl-{Path(data).stem}-{target}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DataError(f"{folder} exists and is not empty; choose a new --out folder")
    table = read_table(data)
    console.print(
        f"searching for {time_budget:g} s: predict [bold]{escape(target)}[/] from "
        f"{table.num_columns - 1} column(s) of {table.num_rows:,} rows"
    )
    with Live(console=console, transient=True, refresh_per_second=4) as live:

        def show(p: Progress) -> None:
            best = "–" if p.best_score is None else f"{p.best_score:.5g}"
            left = max(p.time_budget_s - p.elapsed_s, 0.0)
            live.update(
                f"best {p.metric} {best} ({p.best_model_type or '–'}) · {p.candidates} "
                f"candidate(s) tried · last: {p.last_model_type} {p.last_status} · "
                f"{left:.0f} s left"
            )

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AutoMLWarning)
            result = fit(
                table,
                target,
                task=task,
                metric=metric,
                time_budget=time_budget,
                exclude=exclude,
                seed=seed,
                ensemble=ensemble,
                infer_limit=infer_limit,
                progress=show,
            )
    for w in caught:
        if issubclass(w.category, AutoMLWarning):
            console.print(f"[yellow]note:[/] {escape(str(w.message))}")
    _print_result(result, console)
    saved = result.model.save(folder)
    console.print(f"model saved: [bold]{escape(str(saved))}[/] ({result.model.trainer.model_type})")
    return saved


def _print_result(result: AutoMLResult, console: Console) -> None:
    board = result.leaderboard.to_pylist()
    t = RichTable(title="leaderboard", box=None, header_style="bold")
    for name, justify in (
        ("rank", "right"),
        ("model_type", "left"),
        (result.metric, "right"),  # (or, for one that did not score, its status)
        ("fit s", "right"),
        ("µs/row", "right"),
        ("rounds", "right"),
        ("weight", "right"),
    ):
        t.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    shown = board[:15]
    for row in shown:
        score = row["validation_score"]
        t.add_row(
            str(row["rank"]),
            row["model_type"],
            row["status"] if score is None else f"{score:.5g}",
            f"{row['fit_time_s']:.2f}",
            "–" if row["predict_us_per_row"] is None else f"{row['predict_us_per_row']:.3g}",
            "–" if row["best_iteration"] is None else str(row["best_iteration"]),
            f"{row['ensemble_weight']:g}" if row["ensemble_weight"] else "",
        )
    console.print(t)
    if len(board) > len(shown):
        console.print(f"… and {len(board) - len(shown)} more candidate(s)")
    rechecked = sum(bool(row["rechecked"]) for row in board)
    if rechecked:
        console.print(
            f"ranks 1–{rechecked}: scored again on a fresh shuffle of the folds, the scores the "
            "final choice was made on; the others keep their first score"
        )
    console.print(
        f"{result.task}, {result.metric} by {result.validation}: best {result.best_score:.5g} "
        f"({result.model.trainer.model_type}) in {result.elapsed_s:.1f} s"
    )
