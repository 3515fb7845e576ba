"""Running a built plan with a live display: a progress bar over the steps and one line per step
as it completes, hits the cache or fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

from kiln.orchestration import LocalRunner, Plan, RunResult, StepEvent, run
from kiln.workspace import Workspace

__all__ = ["run_plan"]

_MARKS = {"hit": "[cyan]↺[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]", "start": "[dim]▸[/]"}


def run_plan(
    plan: Plan,
    *,
    workspace: Workspace,
    console: Console,
    err: Console,
    file: Path | None,
    command: str | None = None,
    use_cache: bool = True,
    explain: bool = False,
    workers: int | None = None,
    trigger: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``plan`` in ``workspace`` showing its steps live; never raises for a failed step."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
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

        try:
            return run(
                plan,
                workspace=workspace,
                runner=LocalRunner(workers),
                use_cache=use_cache,
                listener=listener,
                file=file,
                command=command,
                raise_on_failure=False,
                trigger=trigger,
            )
        except KeyboardInterrupt:
            if command:
                err.print(
                    f"resume with (completed steps come from the cache):\n  {escape(command)}"
                )
            raise
