"""``kiln``: the command line. Each command imports what it needs when it runs, so that
``kiln --help`` starts fast. A user's mistake is one red line and a non-zero exit code, never a
traceback: every :class:`~kiln.errors.KilnError` is caught here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kiln._version import __version__
from kiln.errors import KilnError

if TYPE_CHECKING:
    from rich.console import Console

    from kiln.workspace import Workspace

__all__ = ["app", "main"]

app = typer.Typer(
    name="kiln",
    help="Kiln: the whole machine-learning life cycle on one machine or a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
runs_app = typer.Typer(
    help="Pipeline runs: a table, or one run's steps.", invoke_without_command=True
)
app.add_typer(runs_app, name="runs")
schema_app = typer.Typer(
    help="Data schemas: infer one from data or statistics.", no_args_is_help=True
)
app.add_typer(schema_app, name="schema")

F = TypeVar("F", bound=Callable[..., Any])


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _handles_errors(fn: F) -> F:
    """Turn a KilnError into one clear message on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KilnError as e:
            from rich.markup import escape

            _console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}")
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            _console(stderr=True).print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _workspace() -> Workspace:
    from kiln.workspace import Workspace

    return Workspace.find_or_create()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kiln {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Kiln: the whole machine-learning life cycle on one machine or a cluster."""


@app.command()
@_handles_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to make a workspace.")] = Path("."),
) -> None:
    """Make DIRECTORY a Kiln workspace (kiln.toml and .kiln/)."""
    from kiln.workspace import Workspace

    ws, created = Workspace.init(directory)
    ws.metadata  # noqa: B018 - creates the metadata database now, so a bad URL fails here
    if created:
        typer.echo(f"Initialised a Kiln workspace in {ws.root}")
    else:
        typer.echo(f"{ws.root} is already a Kiln workspace; nothing changed")


def _split_params(pairs: list[str]) -> dict[str, str]:
    from kiln.errors import ParameterError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--param {pair!r} is not KEY=VALUE")
        out[key.strip()] = value
    return out


@app.command("run")
@_handles_errors
def run_cmd(
    file: Annotated[Path, typer.Argument(help="Python file that defines a @pipeline.")],
    pipeline_name: Annotated[
        str | None, typer.Option("--pipeline", help="Which pipeline, when the file has several.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE, repeatable.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step anew.")] = False,
    explain_cache: Annotated[
        bool, typer.Option("--explain-cache", help="Say why each step hit or missed the cache.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=0, help="Worker processes (default: one per core; 0: none)."),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="INTERVAL",
            help="Run now, then every INTERVAL (30s, 15m, 1h30m, 1d) from the first start; a tick "
            "while the pipeline is still running is skipped.",
        ),
    ] = None,
    on_new_data: Annotated[
        Path | None,
        typer.Option(
            "--on-new-data",
            metavar="DIR",
            help="Run when a new file or partition folder arrives in DIR; the pipeline's "
            "new_data parameter (list[str]: a batch per run; str: a run per arrival) gets the "
            "paths. What was taken is remembered in the workspace.",
        ),
    ] = None,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            metavar="GLOB",
            help="With --on-new-data: file names to take, e.g. '*.parquet' (default *).",
        ),
    ] = None,
    settle: Annotated[
        str | None,
        typer.Option(
            "--settle",
            metavar="INTERVAL",
            help="With --on-new-data: take a file once its size and mtime held still this long "
            "(default 2s).",
        ),
    ] = None,
    max_runs: Annotated[
        int | None,
        typer.Option(
            "--max-runs",
            min=1,
            metavar="N",
            help="With --every or --on-new-data: stop after N runs.",
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Fail (exit 75) instead of waiting when the pipeline is already running in this "
            "workspace.",
        ),
    ] = False,
) -> None:
    """Run a pipeline; completed steps with unchanged inputs come from the cache.

    Runs of one pipeline in one workspace never overlap: a run waits for the one going on (or
    fails with --no-wait), a schedule skips the tick, a watcher tries again later. Ctrl-C stops a
    schedule or a watcher with a summary.
    """
    from kiln.cli._run import run_pipeline_file

    code = run_pipeline_file(
        file,
        pipeline_name=pipeline_name,
        params=_split_params(param or []),
        use_cache=not no_cache,
        explain=explain_cache,
        workers=workers,
        workspace=_workspace(),
        every=every,
        on_new_data=on_new_data,
        pattern=pattern,
        settle=settle,
        max_runs=max_runs,
        wait=not no_wait,
    )
    raise typer.Exit(code)


@runs_app.callback()
@_handles_errors
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
) -> None:
    """A table of pipeline runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from kiln.cli._views import runs_table

    _console().print(runs_table(_workspace(), limit))


@runs_app.command("show")
@_handles_errors
def runs_show(run_id: Annotated[str, typer.Argument(help="A run id from `kiln runs`.")]) -> None:
    """One run: its parameters and its steps (state, timing, cache, outputs)."""
    from kiln.cli._views import run_detail

    for part in run_detail(_workspace(), run_id):
        _console().print(part)


@app.command()
@_handles_errors
def artifacts(
    type_name: Annotated[
        str | None, typer.Option("--type", help="Only this artifact type.")
    ] = None,
    all_states: Annotated[
        bool, typer.Option("--all", help="Also PENDING and DELETED artifacts.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
) -> None:
    """A table of artifacts, newest first (LIVE ones unless --all)."""
    from kiln.cli._views import artifacts_table

    _console().print(artifacts_table(_workspace(), type_name, all_states, limit))


@app.command()
@_handles_errors
def lineage(
    artifact_id: Annotated[int, typer.Argument(help="An artifact id from `kiln artifacts`.")],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="What made it (the default).")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="What was made from it.")
    ] = False,
) -> None:
    """The lineage of an artifact as a tree: upstream (data, code, parameters) or downstream."""
    from kiln.cli._views import lineage_tree
    from kiln.errors import KilnError as _KilnError

    if upstream and downstream:
        raise _KilnError("choose one of --upstream and --downstream")
    _console().print(
        lineage_tree(_workspace(), artifact_id, "downstream" if downstream else "upstream")
    )


@app.command()
@_handles_errors
def gc(
    older_than: Annotated[
        float,
        typer.Option("--older-than", min=0, help="Only files older than this many seconds."),
    ] = 3600.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing.")
    ] = False,
) -> None:
    """Clean up after crashed runs: abort dead runs, remove staging and orphaned folders."""
    from kiln.orchestration import collect_garbage

    r = collect_garbage(_workspace(), older_than_s=older_than, dry_run=dry_run)
    verb = "would be" if dry_run else "were"
    typer.echo(
        f"{len(r.aborted_runs)} dead run(s) {verb} marked ABORTED "
        f"({r.failed_executions} step(s) FAILED, {r.deleted_pending} pending output(s) DELETED); "
        f"{r.staging_removed} staging folder(s) and {len(r.orphans_removed)} orphaned artifact "
        f"folder(s) {verb} removed"
    )
    for name in r.aborted_runs:
        typer.echo(f"  aborted run {name}")
    for uri in r.orphans_removed:
        typer.echo(f"  orphaned {uri}")


@app.command()
@_handles_errors
def stats(
    data: Annotated[str, typer.Argument(help="CSV, Parquet, JSON Lines, Arrow file or folder.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the statistics JSON.")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Other data (or statistics) to compare.")
    ] = None,
) -> None:
    """Feature statistics of DATA (TFDV's set), optionally compared with OTHER."""
    from kiln.cli._data import describe

    describe(data, out=out, html=html, compare=compare, console=_console())


@schema_app.command("infer")
@_handles_errors
def schema_infer(
    data: Annotated[str, typer.Argument(help="Data, or a statistics JSON file.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the YAML schema.")],
    infer_ranges: Annotated[
        bool, typer.Option("--infer-ranges", help="Also record numeric min/max ranges.")
    ] = False,
) -> None:
    """Infer a schema (types, presence, domains) with TFDV's rules; edit the YAML freely."""
    from kiln.cli._data import infer

    infer(data, out=out, infer_ranges=infer_ranges, console=_console())


@app.command()
@_handles_errors
def validate(
    data: Annotated[str, typer.Argument(help="Data, or a statistics JSON file.")],
    schema: Annotated[Path, typer.Option("--schema", help="The YAML schema.")],
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Data or statistics to compare against.")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="drift (previous span) or skew (training vs serving).")
    ] = "drift",
    environment: Annotated[
        str | None, typer.Option("--environment", help="TRAINING or SERVING.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Validate data against a schema (and a baseline). Exit 0: clean, 1: anomalies, 2: error."""
    from kiln.cli._data import validate as run_validate
    from kiln.errors import KilnError as _KilnError

    if mode not in ("drift", "skew"):
        raise _KilnError(f"--mode {mode!r}: choose drift or skew")
    if output_format not in ("text", "json"):
        raise _KilnError(f"--format {output_format!r}: choose text or json")
    code = run_validate(
        data,
        schema_path=schema,
        baseline=baseline,
        mode=mode,
        environment=environment,
        as_json=output_format == "json",
        console=_console(stderr=output_format == "json"),
    )
    raise typer.Exit(code)


@app.command("evaluate")
@_handles_errors
def evaluate_cmd(
    model_dir: Annotated[
        Path, typer.Argument(help="A model folder, or models:/NAME@ALIAS or models:/NAME/VERSION.")
    ],
    data: Annotated[str, typer.Argument(help="CSV, Parquet, JSON Lines or Arrow, with the label.")],
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline", help="A model (folder or models:/ URI) to compare with, on the same rows."
        ),
    ] = None,
    slice_by: Annotated[
        list[str] | None, typer.Option("--slice", help="Also per value of this column; repeatable.")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold", help="METRIC>=VALUE or METRIC<=VALUE, e.g. roc_auc>=0.9; repeatable."
        ),
    ] = None,
    max_change: Annotated[
        list[str] | None,
        typer.Option(
            "--max-change",
            help="METRIC=DELTA or METRIC=PCT%: how much worse than --baseline it may be "
            "(0: no worse); repeatable.",
        ),
    ] = None,
    check_slices: Annotated[
        bool, typer.Option("--check-slices", help="Apply the thresholds to every slice too.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the metrics JSON.")] = None,
    no_importance: Annotated[
        bool,
        typer.Option(
            "--no-importance", help="Skip permutation importance (computed for --out and --html)."
        ),
    ] = False,
) -> None:
    """Evaluate a model on DATA. Exit 0: blessed (or no thresholds), 1: not blessed, 2: error."""
    from kiln.cli._model import evaluate

    code = evaluate(
        model_dir,
        data,
        baseline=baseline,
        slice_by=slice_by or [],
        thresholds=threshold or [],
        max_changes=max_change or [],
        check_slices=check_slices,
        html=html,
        out=out,
        importance=not no_importance and out is not None,
        console=_console(),
    )
    raise typer.Exit(code)


@app.command()
@_handles_errors
def compare(
    model_a: Annotated[Path, typer.Argument(help="Model A: a folder or a models:/ URI.")],
    model_b: Annotated[Path, typer.Argument(help="Model B: a folder or a models:/ URI.")],
    data: Annotated[str, typer.Argument(help="CSV, Parquet, JSON Lines or Arrow, with the label.")],
    rows: Annotated[int, typer.Option("--rows", min=0, help="Rows to show side by side.")] = 10,
    out: Annotated[Path | None, typer.Option("--out", help="Write the comparison JSON.")] = None,
) -> None:
    """Two models on the same rows: side by side, disagreements, metric difference and its test."""
    from kiln.cli._model import compare as run_compare

    run_compare(model_a, model_b, data, rows=rows, out=out, console=_console())


@app.command("predict")
@_handles_errors
def predict_cmd(
    model_uri: Annotated[
        str,
        typer.Argument(
            help="A model folder, or a registry URI: models:/NAME@ALIAS or models:/NAME/VERSION."
        ),
    ],
    data: Annotated[
        str,
        typer.Option("--input", help="Parquet, CSV, JSON Lines or Arrow: a file, folder or glob."),
    ],
    output: Annotated[Path, typer.Option("--output", help="The file to write (atomically).")],
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="parquet, csv or jsonl (default: from --output's extension). CSV cannot hold "
            "lists: class probabilities are written there as JSON text.",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per batch (memory stays flat).")
    ] = 65_536,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep", help="An input column to copy ahead of the predictions; repeatable."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --output if it exists.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Predict every row of --input with a model; stream the predictions to --output."""
    from kiln.cli._predict import predict

    predict(
        model_uri,
        data,
        output,
        output_format=output_format,
        batch_size=batch_size,
        keep=keep or [],
        overwrite=overwrite,
        quiet=quiet,
        console=_console(),
    )


@app.command("automl")
@_handles_errors
def automl_cmd(
    data: Annotated[
        str, typer.Argument(help="CSV, Parquet, JSON Lines or Arrow, with the target.")
    ],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="Seconds to search (the model is always ready).")
    ] = 60.0,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="roc_auc, log_loss, accuracy, f1_macro, rmse, mae, r2."),
    ] = None,
    task: Annotated[
        str, typer.Option("--task", help="auto, binary, multiclass or regression.")
    ] = "auto",
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="A family to leave out: boosted_tree, linear, random_forest, dnn, catboost.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Model folder to write (default automl-DATA-TARGET)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for splits and the search.")] = 0,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble/--no-ensemble",
            help="Keep an ensemble of the best candidates when it validates better (default), "
            "or the best single one: faster to predict.",
        ),
    ] = True,
    infer_limit: Annotated[
        float | None,
        typer.Option(
            "--infer-limit",
            help="Most seconds per row the model may take to predict in batch, preprocessing "
            "included (2e-5: 20 µs, 50,000 rows/s); slower candidates are left out.",
        ),
    ] = None,
) -> None:
    """Find the best model for TARGET in the time budget; print the leaderboard; save it."""
    from kiln.cli._automl import automl

    automl(
        data,
        target=target,
        time_budget=time_budget,
        metric=metric,
        task=task,
        exclude=exclude or [],
        out=out,
        seed=seed,
        ensemble=ensemble,
        infer_limit=infer_limit,
        console=_console(),
    )


@app.command("train")
@_handles_errors
def train_cmd(
    data: Annotated[
        str, typer.Argument(help="CSV, Parquet, JSON Lines or Arrow, with the target.")
    ],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Registry name (default: the data file's stem).")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help=(
                "auto (AutoML), linear, logistic, kmeans, boosted_tree, random_forest, dnn or"
                " catboost."
            ),
        ),
    ] = "auto",
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="AutoML's search time, seconds.")
    ] = 60.0,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="A curated schema YAML (default: inferred from the data)."),
    ] = None,
    slice_by: Annotated[
        list[str] | None,
        typer.Option("--slice", help="Evaluate per value of this column too; repeatable."),
    ] = None,
) -> None:
    """Train, evaluate against production, validate and register a model: the standard pipeline.

    Exit 0: a model version was registered (promoted or not); 1: the data failed validation or a
    step failed; 2: a mistake in the command or its inputs.
    """
    from kiln.cli._train import train

    code = train(
        data,
        target=target,
        name=name,
        model=model,
        time_budget=time_budget,
        schema=schema,
        slice_by=slice_by or [],
        workspace=_workspace(),
        console=_console(),
        err=_console(stderr=True),
    )
    raise typer.Exit(code)


# The registry's sub-app uses the helpers above (_handles_errors, _console, _workspace).
from kiln.cli._models import models_app  # noqa: E402

app.add_typer(models_app, name="models")


@app.command("export")
@_handles_errors
def export_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A model folder (Model.save's).")],
    out: Annotated[Path, typer.Option("--out", help="The file to write, e.g. model.onnx.")],
    output_format: Annotated[
        str, typer.Option("--format", help="onnx (the only format for now).")
    ] = "onnx",
    opset: Annotated[
        int | None, typer.Option("--opset", help="ONNX opset to write (default 21).")
    ] = None,
) -> None:
    """Export a model's whole prediction path (transform and estimator) to one ONNX file."""
    from kiln.cli._export import export

    export(model_dir, output_format=output_format, out=out, opset=opset, console=_console())


@app.command("sql")
@_handles_errors
def sql_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="A .sql file of statements; none: -e, or the interactive shell."),
    ] = None,
    execute: Annotated[
        str | None,
        typer.Option("-e", "--execute", metavar="STATEMENTS", help="Statements to run (; ...)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table, csv or json (one array of rows per query).")
    ] = "table",
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=0, help="Rows shown by --format table (0: all).")
    ] = 100,
) -> None:
    """BigQuery ML's SQL on the workspace's DuckDB warehouse: CREATE MODEL trains with Kiln,
    ML.PREDICT / ML.EVALUATE / ... query models like tables, models are registry models."""
    from kiln.cli._sql import run_sql

    code = run_sql(
        statements=execute,
        file=file,
        output_format=output_format,
        max_rows=max_rows,
        out=_console(),
        err=_console(stderr=True),
    )
    if code:
        raise typer.Exit(code)


@app.command("serve")
@_handles_errors
def serve_cmd(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="models:/NAME@ALIAS, models:/NAME/VERSION, NAME (its production alias), "
            "NAME=FOLDER or a model folder; none: every model's production alias.",
            metavar="MODEL",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 8080,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Processes sharing the port, each with the models."),
    ] = 1,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Require Authorization: Bearer $VAR on every request but the health probes.",
        ),
    ] = None,
    log_predictions: Annotated[
        float,
        typer.Option(
            "--log-predictions",
            metavar="RATE",
            min=0.0,
            max=1.0,
            help="Log this share of requests (0 to 1) as Parquet under .kiln/predictions/.",
        ),
    ] = 0.0,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body (413 above).")
    ] = 10 * 1024 * 1024,
    poll: Annotated[
        float,
        typer.Option(
            "--poll",
            min=0.0,
            help="Seconds between registry checks for a moved alias (hot swap; 0: never).",
        ),
    ] = 2.0,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            metavar="NAME=V:W,V:W",
            help="Serve versions of registered model NAME side by side, e.g. churn=3:90,4:10; "
            "the X-Client-Id header sticks a client to one; repeatable.",
        ),
    ] = None,
) -> None:
    """Serve models over HTTP: Vertex AI / TF Serving :predict and KServe V2 /infer.

    Ready (one line on stdout) once every model is loaded and warmed up; a moved registry alias
    is loaded, warmed up and swapped in without failing a request. Stop with Ctrl-C or SIGTERM.
    """
    from kiln.cli._serve import serve

    serve(
        models or [],
        host=host,
        port=port,
        workers=workers,
        token_env=token_env,
        log_predictions=log_predictions,
        max_body_bytes=max_body_bytes,
        poll_seconds=poll,
        splits=split or [],
    )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as e:
        sys.exit(e.code)
