"""``kiln run``: build the pipeline, run it with a live display, print what happened.

Besides one run now, ``kiln run`` can keep running a pipeline (continuous training):

- ``--every 1h``: run now, then at every tick of a fixed grid (``start + k * interval``, so it
  never drifts); a tick that comes while the previous run is still going, or while another process
  runs the pipeline, is skipped and said so.
- ``--on-new-data DIR``: run when a new file (``--pattern``) or partition folder arrives in DIR and
  has held still for ``--settle``; what arrived goes to the pipeline's ``new_data`` parameter (see
  :mod:`kiln.orchestration._triggers`). What was taken is remembered in the workspace, so a
  restart does not take it again.

Every run holds the pipeline's lock: two runs of one pipeline in one workspace never overlap. A
plain run waits for the holder (``--no-wait``: fail with exit code 75 instead); a schedule skips
the tick; a watcher keeps the arrivals and tries again at its next poll. ``--max-runs N`` stops a
schedule or a watcher after N runs; Ctrl-C (or SIGTERM) stops one with a summary. Exit code: 0 when
every run completed, 1 when one failed, 130 when stopped in the middle of a run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from kiln.cli._live import run_plan
from kiln.orchestration import (
    Pipeline,
    RunResult,
    load_pipeline,
    resume_command,
)
from kiln.orchestration._triggers import (
    NEW_DATA_PARAM,
    Arrival,
    FolderWatcher,
    LockHolder,
    PipelineBusyError,
    PipelineLock,
    Ticker,
    TriggerError,
    format_interval,
    new_data_mode,
    parse_interval,
    trigger_env,
)
from kiln.workspace import Workspace

__all__ = ["run_pipeline_file"]


@dataclass
class _Job:
    """What every run of this command shares: the file, the options, the consoles."""

    file: Path
    pipeline_name: str | None
    params: dict[str, str]
    use_cache: bool
    explain: bool
    workers: int | None
    workspace: Workspace
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(
        default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True)
    )

    def load(self) -> tuple[Pipeline, dict[str, Any]]:
        """The pipeline and its parameter values, read anew (the file may have changed). A
        ``.yaml`` file is a config of the standard pipeline (:func:`kiln.pipelines.load_config`);
        ``--param`` values override its keys."""
        if self.file.suffix.lower() in (".yaml", ".yml"):
            from kiln.pipelines import load_config

            pipe, config = load_config(self.file)
            return pipe, {**config, **pipe.coerce(self.params)}
        pipe = load_pipeline(self.file, self.pipeline_name)
        return pipe, pipe.coerce(self.params)

    def say(self, text: str) -> None:
        """A line of a schedule's or watcher's log, with the time."""
        self.out.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")


@dataclass
class _Tally:
    runs: int = 0
    failed: int = 0
    skipped: int = 0
    taken: int = 0
    interrupted: bool = False

    def add(self, result: RunResult) -> None:
        self.runs += 1
        self.failed += result.state != "COMPLETE"

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0


def run_pipeline_file(
    file: Path,
    *,
    pipeline_name: str | None,
    params: dict[str, str],
    use_cache: bool,
    explain: bool,
    workers: int | None,
    workspace: Workspace,
    every: str | None = None,
    on_new_data: Path | None = None,
    pattern: str | None = None,
    settle: str | None = None,
    max_runs: int | None = None,
    wait: bool = True,
) -> int:
    """Run a pipeline file (once, on a schedule or on new data); the exit code (see above)."""
    if every is not None and on_new_data is not None:
        raise TriggerError(
            "choose one of --every and --on-new-data; to do both, run two commands: they share "
            "the pipeline's lock, so their runs never overlap"
        )
    looping = every is not None or on_new_data is not None
    if on_new_data is None:
        given = [o for o, v in (("--pattern", pattern), ("--settle", settle)) if v is not None]
        if given:
            verb = "go" if len(given) > 1 else "goes"
            raise TriggerError(f"{' and '.join(given)} only {verb} with --on-new-data DIR")
    if not looping and max_runs is not None:
        raise TriggerError("--max-runs only goes with --every or --on-new-data")
    if looping and not wait:
        raise TriggerError(
            "--no-wait is for a single run: a schedule skips a tick while the pipeline runs "
            "elsewhere, and a watcher keeps the new data for its next try"
        )
    interval = parse_interval(every) if every is not None else 0.0
    settle_s = (
        parse_interval(settle, option="--settle", allow_zero=True) if settle is not None else 2.0
    )

    job = _Job(file, pipeline_name, params, use_cache, explain, workers, workspace)
    pipe, values = job.load()
    if on_new_data is not None:
        mode = new_data_mode(pipe)
        if NEW_DATA_PARAM in values and mode != "none":
            raise TriggerError(
                f"--param {NEW_DATA_PARAM}=... and --on-new-data: the watcher sets "
                f"{NEW_DATA_PARAM} to what arrived; leave out the --param"
            )
        if mode != "none":
            values[NEW_DATA_PARAM] = [] if mode == "batch" else ""
        name = pipe.build(**values).pipeline  # a bad graph fails now, before any waiting
        watcher = FolderWatcher.for_pipeline(
            workspace, name, on_new_data, pattern=pattern or "*", settle=settle_s
        )
        return _looping(lambda tally: _watch(job, name, watcher, mode, max_runs, tally))
    name = pipe.build(**values).pipeline
    if every is not None:
        return _looping(lambda tally: _schedule(job, name, interval, max_runs, tally))

    lock = PipelineLock(workspace, name)

    def waiting(holder: LockHolder | None) -> None:
        job.err.print(
            f"pipeline {name!r} is already running in this workspace "
            f"({escape(holder.describe()) if holder else 'another process'}); waiting for it to "
            "finish (Ctrl-C to give up; --no-wait fails instead)"
        )

    if not lock.acquire(wait=wait, on_wait=waiting, what=f"kiln run {file}"):
        holder = lock.holder()
        raise PipelineBusyError(
            f"pipeline {name!r} is already running in this workspace "
            f"({holder.describe() if holder else 'another process'}); try again when it "
            "finishes, or leave out --no-wait to wait for it"
        )
    try:
        result = _execute(job, pipe, values, {"kind": "manual"}, table=True)
    finally:
        lock.release()
    return 0 if result.state == "COMPLETE" else 1


def _looping(body: Callable[[_Tally], None]) -> int:
    """Run a schedule's or watcher's loop with SIGTERM treated as Ctrl-C; its exit code."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    tally = _Tally()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        body(tally)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return tally.exit_code


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for one run (its worker processes inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local(ticker: Ticker, tick: int) -> time.struct_time:
    return time.localtime(ticker.wall(tick))


def _stamp(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds")


def _schedule(job: _Job, name: str, interval: float, max_runs: int | None, tally: _Tally) -> None:
    every = format_interval(interval)
    ticker = Ticker(interval)
    lock = PipelineLock(job.workspace, name)
    limit = f", {max_runs} run(s)" if max_runs else ""
    tick, skipped = 0, 0
    running = False
    try:
        job.say(f"[bold]schedule[/] {name}: every {every}{limit}; Ctrl-C to stop")
        while True:
            if lock.acquire(wait=False, what=f"kiln run {job.file} --every {every}"):
                trigger = {
                    "kind": "schedule",
                    "every": every,
                    "every_s": interval,
                    "tick": tick,
                    "tick_time": _stamp(ticker.wall(tick)),
                    "skipped_ticks": skipped,
                }
                try:
                    running = True
                    pipe, values = job.load()
                    job.say(f"tick {tick}: run {name}")
                    result = _execute(job, pipe, values, trigger, table=False)
                    running = False
                finally:
                    lock.release()
                tally.add(result)
                skipped = 0
                if max_runs is not None and tally.runs >= max_runs:
                    break
                tick, missed = ticker.next_after(tick)
                if missed:
                    job.say(
                        f"[yellow]skipped {missed} tick(s)[/]: run {result.run_id} was still "
                        f"going (it took {result.duration_ms / 1000:.2f} s; the interval is "
                        f"{every})"
                    )
                job.say(f"next: tick {tick} at {time.strftime('%H:%M:%S', _local(ticker, tick))}")
            else:
                holder = lock.holder()
                job.say(
                    f"[yellow]tick {tick} skipped[/]: pipeline {name!r} is running elsewhere "
                    f"({escape(holder.describe()) if holder else 'another process'})"
                )
                missed = 1
                tick, more = ticker.next_after(tick)
                missed += more
            skipped += missed
            tally.skipped += missed
            time.sleep(max(0.0, ticker.due(tick) - time.monotonic()))
    except KeyboardInterrupt:
        tally.interrupted = running
    finally:  # also when an error ends it: what was done is said before the error
        job.say(
            f"[bold]schedule stopped[/]: {_runs(tally)}, {tally.skipped} tick(s) skipped"
            + (" (interrupted in the middle of a run)" if tally.interrupted else "")
        )


def _watch(
    job: _Job,
    name: str,
    watcher: FolderWatcher,
    mode: str,
    max_runs: int | None,
    tally: _Tally,
) -> None:
    lock = PipelineLock(job.workspace, name)
    settle = format_interval(watcher.settle) if watcher.settle else "0s"
    told_busy = False
    running = False
    try:
        job.say(
            f"[bold]watching[/] {escape(str(watcher.folder))} for new files matching "
            f"{escape(watcher.pattern)!r} and partition folders (settled for {settle}) -> "
            f"{name}; {len(watcher.processed)} taken before; Ctrl-C to stop"
        )
        if mode == "none":
            job.say(
                f"[dim]pipeline {name!r} has no {NEW_DATA_PARAM} parameter: each run gets the "
                "same parameters, so its steps come from the cache unless they read the folder "
                f"through an InputPath; declare {NEW_DATA_PARAM}: list[str] = [] to be given the "
                "new paths[/]"
            )
        while True:
            arrivals = watcher.poll()
            if arrivals and not lock.acquire(wait=False, what=f"kiln run {job.file} --on-new-data"):
                if not told_busy:
                    holder = lock.holder()
                    job.say(
                        f"{len(arrivals)} new arrival(s) wait: pipeline {name!r} is running "
                        f"elsewhere ({escape(holder.describe()) if holder else 'another process'})"
                    )
                    told_busy = True
            elif arrivals:
                told_busy = False
                try:
                    watcher.reload()  # another watcher of this pipeline may have taken them
                    fresh = [a for a in arrivals if a.name not in watcher.processed]
                    for a in arrivals:
                        if a.name in watcher.processed:
                            job.say(
                                f"{escape(a.name)} was taken by run "
                                f"{watcher.processed[a.name].get('run')} (another watcher)"
                            )
                    batches = [[a] for a in fresh] if mode == "each" else [fresh] if fresh else []
                    for batch in batches:
                        running = True
                        result = _run_arrivals(job, watcher, mode, batch)
                        running = False
                        watcher.mark(batch, result.run_id, result.state)
                        tally.add(result)
                        tally.taken += len(batch)
                        if max_runs is not None and tally.runs >= max_runs:
                            raise _Done
                finally:
                    lock.release()
            time.sleep(watcher.poll_interval)
    except _Done:
        pass
    except KeyboardInterrupt:
        tally.interrupted = running
    finally:
        job.say(
            f"[bold]watcher stopped[/]: {_runs(tally)}, {tally.taken} arrival(s) taken"
            + (f", {watcher.pending()} not settled yet" if watcher.pending() else "")
            + (" (interrupted in the middle of a run)" if tally.interrupted else "")
        )


class _Done(Exception):
    """--max-runs reached."""


def _run_arrivals(job: _Job, watcher: FolderWatcher, mode: str, batch: list[Arrival]) -> RunResult:
    paths = [str(a.path) for a in batch]
    trigger = {
        "kind": "new_data",
        "folder": str(watcher.folder),
        "pattern": watcher.pattern,
        "arrivals": [a.name for a in batch],
        "paths": paths,
    }
    pipe, values = job.load()
    if mode == "batch":
        values[NEW_DATA_PARAM] = paths
    elif mode == "each":
        values[NEW_DATA_PARAM] = paths[0]
    what = ", ".join(f"{a.name}{'/' if a.kind == 'partition' else ''}" for a in batch)
    job.say(f"new data: {escape(what)}: run {pipe.name}")
    return _execute(job, pipe, values, trigger, table=False, paths=paths)


def _runs(tally: _Tally) -> str:
    return f"{tally.runs} run(s) ({tally.runs - tally.failed} complete, {tally.failed} failed)"


def _execute(
    job: _Job,
    pipe: Pipeline,
    values: dict[str, Any],
    trigger: dict[str, Any],
    *,
    table: bool,
    paths: list[str] | None = None,
) -> RunResult:
    """One run with the live display and its summary."""
    out, err, file = job.out, job.err, job.file
    plan = pipe.build(**values)
    command = resume_command(file, plan.pipeline, plan.params, job.pipeline_name is not None)
    out.print(f"[bold]run[/] {plan.pipeline}  [dim]{escape(str(file))}[/]")
    with _environ(trigger_env(trigger, paths)):
        result = run_plan(
            plan,
            workspace=job.workspace,
            console=out,
            err=err,
            file=file.resolve(),
            command=command,
            use_cache=job.use_cache,
            explain=job.explain,
            workers=job.workers,
            trigger=trigger,
        )
    _summary(out, err, result, table=table)
    return result


def _summary(out: Console, err: Console, result: RunResult, *, table: bool = True) -> None:
    steps = list(result.steps.values())
    cached = sum(s.state == "CACHED" for s in steps)
    ran = sum(s.state == "COMPLETE" for s in steps)
    if result.state == "COMPLETE":
        out.print(
            f"[green bold]complete[/] {result.run_id}: {ran} ran, {cached} from cache, "
            f"{result.duration_ms / 1000:.2f} s"
        )
        if not table:
            return
        grid = RichTable(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("step", "output", "artifact", "path"):
            grid.add_column(col, overflow="fold")
        from kiln.workspace import Workspace

        ws = Workspace.find_or_create(notice=False)
        for s in steps:
            for name, art in s.outputs.items():
                grid.add_row(
                    s.name, name, f"{art.type_name} #{art.id}", str(ws.artifacts.path_of(art.uri))
                )
        out.print(grid)
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
