"""``kiln train``: the no-code front door. Runs the standard pipeline on a data file with a live
display, then says what happened: data anomalies, the AutoML leaderboard, the candidate's metrics
next to the champion's, the blessing decision and why, and the registered ``models:/NAME/VERSION``.

Exit codes: 0 a model was registered (promoted or not), 1 the data failed validation (nothing
registered), 2 a mistake in the command or its inputs.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from kiln.errors import DataError
from kiln.workspace import Workspace

__all__ = ["train"]


def train(
    data: str,
    *,
    target: str,
    name: str | None,
    model: str,
    time_budget: float,
    schema: Path | None,
    slice_by: list[str],
    workspace: Workspace,
    console: Console,
    err: Console,
) -> int:
    from kiln.cli._live import run_plan
    from kiln.pipelines import MODELS, resolve_champion, standard

    source = Path(data)
    if not source.exists():
        raise DataError(
            f"data {data} does not exist; pass a CSV, Parquet, JSON Lines or Arrow file"
        )
    if model not in MODELS:
        raise DataError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
    if schema is not None and not schema.is_file():
        raise DataError(f"--schema {schema} is not a file; pass a schema YAML (kiln schema infer)")
    if time_budget <= 0:
        raise DataError(f"--time-budget must be > 0 seconds, got {time_budget:g}")
    task = _task(source, target)
    model_name = name or source.stem
    champion = resolve_champion(model_name, "production", workspace)
    params: dict[str, Any] = {
        "source": str(source.resolve()),
        "target": target,
        "name": model_name,
        "model": model,
        "task": task,
        "time_budget": time_budget,
        "schema": str(schema.resolve()) if schema else "",
        "slice_by": slice_by,
    }
    plan = standard.build(**params)
    how = f"AutoML, {time_budget:g} s" if model == "auto" else model
    console.print(
        f"[bold]train[/] {escape(model_name)}: predict {escape(target)} from "
        f"{escape(source.name)} ({how})"
        + (f" against production ({champion})" if champion else "; no production model yet")
    )
    command = shlex.join(
        ["kiln", "train", data, "--target", target, "--name", model_name, "--model", model]
        + ["--time-budget", format(time_budget, "g")]
        + (["--schema", str(schema)] if schema else [])
        + [arg for column in slice_by for arg in ("--slice", column)]
    )
    result = run_plan(
        plan, workspace=workspace, console=console, err=err, file=None, command=command
    )
    return _report(result, workspace, console, err)


def _task(source: Path, target: str) -> str:
    """The task the target column asks for (read alone: the pipeline reads the data itself)."""
    from kiln.automl import detect_task
    from kiln.data import read_table

    try:
        column = read_table(source, columns=[target])[target]
    except DataError as e:
        if f"no column {target!r}" not in str(e):
            raise  # unreadable data: its own message
        raise DataError(f"--target {target!r} is not a column of {source.name} ({e})") from e
    return detect_task(column)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _report(result: Any, ws: Workspace, console: Console, err: Console) -> int:
    from kiln.artifacts import Anomalies, InfraBlessing, Metrics, ModelEvaluation, PushedModel

    steps = result.steps
    failed = result.failed_step
    if failed is not None:
        if failed.component == "ExampleValidator":
            err.print("[bold red]the data failed validation[/]: nothing was trained or registered")
            err.print(escape(failed.error or ""))
            return 1
        err.print(f"[bold red]error:[/] step {failed.name} failed")
        err.print(escape(failed.error or ""))
        if failed.log:
            err.print(f"[dim]step log: {escape(failed.log)}[/]")
        return 1

    def artifact(step: str, cls: Any, output: str = "output") -> Any:
        art = result.output(step, output)
        return cls.stored(ws.artifacts.path_of(art.uri), id=art.id, uri=art.uri).read()

    anomalies = artifact("ExampleValidator", Anomalies)
    console.print(
        "data: no anomalies" if not anomalies else f"data: {len(anomalies)} anomalies (recorded)"
    )
    drift = artifact("DriftCheck", Metrics)
    if drift["baseline"]:
        scores = drift["scores"]
        worst = max(scores, key=scores.get, default=None)
        console.print(
            f"drift against {escape(drift['baseline'])}'s data: "
            + (f"largest {scores[worst]:.3f} ({escape(worst)}); " if worst else "")
            + (
                f"over {drift['threshold']:g}: {escape(', '.join(drift['drifted']))}"
                if drift["drifted"]
                else f"none over {drift['threshold']:g}"
            )
        )
    trained = next(s for s in ("AutoML", "Trainer") if s in steps)
    manifest = json.loads(
        (ws.artifacts.path_of(result.output(trained).uri) / "manifest.json").read_text()
    )
    board = (manifest.get("metrics") or {}).get("automl", {}).get("leaderboard")
    if board:
        _leaderboard(board, manifest["metrics"]["automl"]["metric"], console)
    evaluation = artifact("ChampionEvaluator", ModelEvaluation, "evaluation")
    _metrics(evaluation, console)
    infra = artifact("InfraValidator", InfraBlessing)
    pushed = artifact("Pusher", PushedModel)
    console.print("[bold]blessing[/]")
    for reason in evaluation["blessing"].get("reasons", []):
        console.print(f"  evaluation: {escape(reason)}")
    for reason in infra.get("reasons", []):
        console.print(f"  infra: {escape(reason)}")
    mark = "[green]promoted[/]" if pushed["promoted"] else "[yellow]not promoted[/]"
    console.print(f"{mark}: {escape(pushed['reasons'][0])}")
    console.print(f"registered [bold]{escape(pushed['uri'])}[/] (run {result.run_id})")
    report = ws.artifacts.path_of(result.output("ChampionEvaluator", "report").uri)
    console.print(
        f"look: kiln models show {escape(pushed['name'])} · kiln runs show {result.run_id} · "
        f"{escape(str(report / 'index.html'))}"
    )
    return 0


def _leaderboard(board: list[dict[str, Any]], metric: str, console: Console) -> None:
    t = RichTable(title="AutoML leaderboard", box=None, header_style="bold", title_justify="left")
    for col in ("rank", "model_type", metric, "fit s", "ensemble weight"):
        t.add_column(col, no_wrap=True)
    for row in board[:10]:
        t.add_row(
            str(row["rank"]),
            row["model_type"],
            _fmt(row["validation_score"]) if row["status"] == "ok" else row["status"],
            f"{row['fit_time_s']:.2f}",
            _fmt(row["ensemble_weight"]) if row["ensemble_weight"] else "",
        )
    console.print(t)


def _metrics(evaluation: dict[str, Any], console: Console) -> None:
    metrics = evaluation["metrics"]
    base = evaluation.get("baseline_metrics") or None
    t = RichTable(title="evaluation (eval split)", box=None, header_style="bold")
    t.add_column("metric")
    t.add_column("candidate", justify="right")
    if base:
        t.add_column("production", justify="right")
    for key, value in metrics.items():
        if isinstance(value, dict | list) or key == "task" or value is None:
            continue
        t.add_row(key, _fmt(value), *([_fmt(base.get(key))] if base else []))
    console.print(t)
