"""``kiln run``: build the pipeline, run it with a live display, print what happened."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable

from kiln.orchestration import LocalRunner, RunResult, StepEvent, load_pipeline, resume_command, run
from kiln.workspace import Workspace

__all__ = ["run_pipeline_file"]

_MARKS = {"hit": "[cyan]↺[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]", "start": "[dim]▸[/]"}


def run_pipeline_file(
    file: Path,
    *,
    pipeline_name: str | None,
    params: dict[str, str],
    use_cache: bool,
    explain: bool,
    workers: int | None,
    workspace: Workspace,
) -> int:
    """Run a pipeline file; the exit code: 0 complete, 1 a step failed."""
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    pipe = load_pipeline(file, pipeline_name)
    values = pipe.coerce(params)
    plan = pipe.build(**values)

    several = pipeline_name is not None
    command = resume_command(file, plan.pipeline, plan.params, several)

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as progress:
        bar = progress.add_task(f"{plan.pipeline}", total=len(plan.steps))

        running: list[str] = []

        def listener(event: StepEvent) -> None:
            s = event.step
            if event.kind == "start":
                running.append(s.name)
            elif s.name in running:
                running.remove(s.name)
            progress.update(bar, description=f"{plan.pipeline}: {', '.join(running)}")
            if event.kind == "start":
                if explain:
                    progress.console.print(
                        f"  {_MARKS['start']} {escape(s.name)}  [dim]{escape(s.reason)}[/]"
                    )
                return
            progress.advance(bar)
            if event.kind == "hit":
                detail = escape(s.reason) if explain else "cached"
                progress.console.print(f"  {_MARKS['hit']} {escape(s.name)}  [dim]{detail}[/]")
            elif event.kind == "done":
                detail = f"{s.duration_ms / 1000:.2f} s"
                progress.console.print(f"  {_MARKS['done']} {escape(s.name)}  [dim]{detail}[/]")
            else:
                progress.console.print(f"  {_MARKS['failed']} {escape(s.name)}  [red]failed[/]")

        out.print(f"[bold]run[/] {plan.pipeline}  [dim]{escape(str(file))}[/]")
        try:
            result = run(
                plan,
                workspace=workspace,
                runner=LocalRunner(workers),
                use_cache=use_cache,
                listener=listener,
                file=file.resolve(),
                command=command,
                raise_on_failure=False,
            )
        except KeyboardInterrupt:
            err.print(f"resume with (completed steps come from the cache):\n  {escape(command)}")
            raise
    _summary(out, err, result)
    return 0 if result.state == "COMPLETE" else 1


def _summary(out: Console, err: Console, result: RunResult) -> None:
    steps = list(result.steps.values())
    cached = sum(s.state == "CACHED" for s in steps)
    ran = sum(s.state == "COMPLETE" for s in steps)
    if result.state == "COMPLETE":
        out.print(
            f"[green bold]complete[/] {result.run_id}: {ran} ran, {cached} from cache, "
            f"{result.duration_ms / 1000:.2f} s"
        )
        table = RichTable(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("step", "output", "artifact", "path"):
            table.add_column(col, overflow="fold")
        from kiln.workspace import Workspace

        ws = Workspace.find_or_create(notice=False)
        for s in steps:
            for name, art in s.outputs.items():
                table.add_row(
                    s.name, name, f"{art.type_name} #{art.id}", str(ws.artifacts.path_of(art.uri))
                )
        out.print(table)
        return
    bad = result.failed_step
    assert bad is not None
    err.print(
        f"[bold red]error:[/] step {escape(bad.name)!r} ({escape(bad.component)}) "
        f"failed in run {result.run_id}"
    )
    err.print(escape(bad.error or ""))
    if bad.log:
        err.print(f"[dim]step log: {escape(bad.log)}[/]")
    skipped = [s.name for s in steps if s.state == "SKIPPED"]
    if skipped:
        err.print(f"[dim]not run: {escape(', '.join(skipped))}[/]")
    err.print(
        f"resume with (completed steps come from the cache):\n  {escape(result.resume_command)}"
    )
