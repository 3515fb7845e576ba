"""Continuous training: ``kiln run --every``, ``kiln run --on-new-data`` and the pipeline lock.

Real ``kiln`` processes on real files. Nothing asserts on how long something took: components
write their start and end times to a log, and the tests check counts, states and that intervals do
not overlap; every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import KILN, assert_clean_error, kiln
from kiln.orchestration import RUN_CONTEXT, PipelineLock, Ticker, TriggerError
from kiln.orchestration._triggers import FolderWatcher, format_interval, parse_interval
from kiln.workspace import Workspace

# A component that logs when it ran (and what it was given), and can wait for a gate file.
PIPELINE = """
from __future__ import annotations
import json, os, time
from pathlib import Path
from kiln import Metrics, component, pipeline

LOG = Path({log!r})

@component
def record(new_data: {new_data_type}, label: str = "", nap: float = 0.0, gate: str = "") -> Metrics:
    start = time.time()
    with LOG.open("a") as f:
        f.write(json.dumps({{"event": "start", "label": label, "pid": os.getpid()}}) + "\\n")
    if gate:
        deadline = time.time() + 60
        while not Path(gate).exists() and time.time() < deadline:
            time.sleep(0.02)
    time.sleep(nap)
    items = new_data if isinstance(new_data, list) else ([new_data] if new_data else [])
    lines = {{p: len(Path(p).read_text().splitlines()) for p in items if Path(p).is_file()}}
    entry = {{"event": "end", "label": label, "start": start, "end": time.time(),
              "new_data": new_data, "lines": lines, "env": os.environ.get("KILN_NEW_DATA")}}
    with LOG.open("a") as f:
        f.write(json.dumps(entry) + "\\n")
    return Metrics({{"n": len(items)}})

@pipeline(name="ct")
def ct(new_data: {new_data_type} = {default}, label: str = "", nap: float = 0.0,
       gate: str = "") -> None:
    record(new_data=new_data, label=label, nap=nap, gate=gate)
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert kiln("init", cwd=tmp_path).returncode == 0
    return tmp_path


def pipeline_file(ws: Path, new_data_type: str = "list[str]") -> Path:
    default = {"list[str]": "[]", "str": '""', "int": "0"}[new_data_type]
    path = ws / "ct.py"
    path.write_text(
        textwrap.dedent(
            PIPELINE.format(log=str(ws / "log.jsonl"), new_data_type=new_data_type, default=default)
        )
    )
    return path


def log_entries(ws: Path, event: str = "end") -> list[dict[str, Any]]:
    log = ws / "log.jsonl"
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in entries if e["event"] == event]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


class Kiln:
    """A ``kiln`` process in the background, its output going to files the test can read."""

    def __init__(self, ws: Path, *args: str, name: str) -> None:
        self.out_path, self.err_path = ws / f"{name}.out", ws / f"{name}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [KILN, *args],
                cwd=ws,
                stdout=out,
                stderr=err,
                env={**os.environ, "COLUMNS": "200"},
                text=True,
            )

    @property
    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"kiln did not finish in {timeout} s:\n{self.output}") from None

    def finished_ok(self, timeout: float = 120) -> str:
        code = self.wait(timeout)
        out = self.output
        assert code == 0, f"exit {code}:\n{out}"
        assert "Traceback" not in out, out
        return out


@pytest.fixture
def background() -> Iterator[list[Kiln]]:
    """Background processes, killed at the end if a test left one running."""
    procs: list[Kiln] = []
    yield procs
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(timeout=30)


def start(background: list[Kiln], ws: Path, *args: str, name: str) -> Kiln:
    k = Kiln(ws, *args, name=name)
    background.append(k)
    return k


def run_triggers(ws: Path) -> list[dict[str, Any]]:
    """Each run's ``trigger`` property, oldest first."""
    w = Workspace(ws)
    try:
        runs = w.metadata.get_contexts(type_name=RUN_CONTEXT)
        triggers = [r.properties["trigger"] for r in sorted(runs, key=lambda r: r.id or 0)]
    finally:
        w.close()
    assert all(isinstance(t, dict) for t in triggers)
    return triggers  # type: ignore[return-value]


def assert_disjoint(entries: list[dict[str, Any]]) -> None:
    spans = sorted((e["start"], e["end"]) for e in entries)
    for (_, end), (start_next, _) in itertools.pairwise(spans):
        assert end <= start_next, f"runs overlap: {spans}"


# ---------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), ("0.2s", 0.2)],
)
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == pytest.approx(seconds)
    assert parse_interval(format_interval(seconds)) == pytest.approx(seconds)


def test_settle_may_be_zero_but_every_may_not() -> None:
    assert parse_interval("0s", option="--settle", allow_zero=True) == 0
    with pytest.raises(TriggerError, match="must be more than zero"):
        parse_interval("0s")


def test_ticks_are_a_fixed_grid_and_passed_ticks_are_skipped() -> None:
    t = Ticker(10.0, start=100.0, start_wall=1000.0)
    assert t.next_after(0, now=101.0) == (1, 0)  # a short run: the next tick, none skipped
    assert t.next_after(0, now=135.0) == (4, 3)  # a run past ticks 1-3: 4 is next, 1-3 skipped
    assert t.next_after(0, now=140.0) == (4, 3)  # tick 4 is due right now: it runs
    assert t.next_after(4, now=140.0) == (5, 0)  # after tick 4 ran at once: 5 is next
    assert t.due(5) == 150.0
    assert t.wall(5) == 1050.0


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    first, second = PipelineLock(tmp_path, "p"), PipelineLock(tmp_path, "p")
    other = PipelineLock(tmp_path, "other pipeline/name")
    assert first.acquire(wait=False, what="first")
    try:
        assert not second.acquire(wait=False)
        assert not second.acquire(timeout=0.2)
        holder = second.holder()
        assert holder is not None
        assert (holder.pid, holder.what) == (os.getpid(), "first")
        assert other.acquire(wait=False)  # another pipeline: its own lock
        other.release()
        assert other.path.parent == first.path.parent
    finally:
        first.release()
    assert second.acquire(wait=False)
    second.release()


def test_watcher_state_survives_a_new_watcher(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n")
    state = tmp_path / "state.json"
    w = FolderWatcher(folder, state, settle=0)
    arrivals = w.poll()
    assert [a.name for a in arrivals] == ["a.csv"]
    assert w.poll() == arrivals  # until marked
    w.mark(arrivals, "run-1", "COMPLETE")
    assert w.poll() == []
    assert FolderWatcher(folder, state, settle=0).poll() == []
    state.write_text("{not json")
    with pytest.raises(TriggerError, match=r"is not valid .* delete it"):
        FolderWatcher(folder, state, settle=0)


# ---------------------------------------------------------------------------- the schedule


@pytest.mark.slow
def test_schedule_runs_n_times_and_skips_ticks_while_a_run_is_going(ws: Path) -> None:
    path = pipeline_file(ws)
    # each run takes at least 0.6 s, three times the interval: ticks pass while it runs
    proc = kiln(
        "run", str(path), "--every", "0.2s", "--max-runs", "3", "--no-cache",
        "--param", "nap=0.6", cwd=ws,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert out.count("\ncomplete ct-") == 3
    assert "was still going" in out
    assert "schedule stopped: 3 run(s) (3 complete, 0 failed)" in out
    entries = log_entries(ws)
    assert len(entries) == 3
    assert_disjoint(entries)

    triggers = run_triggers(ws)
    assert [t["kind"] for t in triggers] == ["schedule"] * 3
    ticks = [t["tick"] for t in triggers]
    assert ticks[0] == 0
    for (before, after), t in zip(itertools.pairwise(ticks), triggers[1:], strict=True):
        assert after >= before + 3  # 0.6 s of running covers three 0.2 s ticks
        assert t["skipped_ticks"] == after - before - 1
    assert all(t["every"] == "0.2s" for t in triggers)
    assert f"{sum(t['skipped_ticks'] for t in triggers)} tick(s) skipped" in out
    listed = kiln("runs", cwd=ws).stdout
    assert listed.count("every 0.2s (tick ") == 3, listed


@pytest.mark.slow
def test_schedule_skips_a_tick_while_another_process_runs_the_pipeline(
    ws: Path, background: list[Kiln]
) -> None:
    path = pipeline_file(ws)
    gate = ws / "gate"
    manual = start(
        background, ws, "run", str(path), "--param", "label=manual", "--param", f"gate={gate}",
        name="manual",
    )  # fmt: skip
    wait_for("the manual run to start", lambda: len(log_entries(ws, "start")) == 1)
    schedule = start(
        background, ws, "run", str(path), "--every", "0.2s", "--max-runs", "1",
        "--param", "label=scheduled", name="schedule",
    )  # fmt: skip
    wait_for("a skipped tick", lambda: "tick 1 skipped" in schedule.output)
    assert log_entries(ws) == []  # the manual run still holds the lock; nothing else ran
    assert f"pipeline 'ct' is running elsewhere (pid {manual.proc.pid}" in schedule.output
    gate.touch()
    manual.finished_ok()
    out = schedule.finished_ok()
    assert "schedule stopped: 1 run(s) (1 complete, 0 failed)" in out
    entries = log_entries(ws)
    assert [e["label"] for e in entries] == ["manual", "scheduled"]
    assert_disjoint(entries)
    triggers = run_triggers(ws)
    assert triggers[0] == {"kind": "manual"}
    assert triggers[1]["kind"] == "schedule"
    assert triggers[1]["tick"] >= 2
    assert triggers[1]["skipped_ticks"] == triggers[1]["tick"]


@pytest.mark.slow
def test_ctrl_c_stops_a_schedule_and_sigterm_a_watcher_with_a_summary(
    ws: Path, background: list[Kiln]
) -> None:
    path = pipeline_file(ws)
    schedule = start(background, ws, "run", str(path), "--every", "1h", name="schedule")
    wait_for("the first run", lambda: "next: tick 1 at" in schedule.output)
    schedule.proc.send_signal(signal.SIGINT)
    out = schedule.finished_ok(timeout=30)
    assert "schedule stopped: 1 run(s) (1 complete, 0 failed), 0 tick(s) skipped" in out

    (ws / "in").mkdir()
    watcher = start(background, ws, "run", str(path), "--on-new-data", "in", name="watcher")
    wait_for("the watcher to start", lambda: "watching" in watcher.output)
    watcher.proc.send_signal(signal.SIGTERM)
    out = watcher.finished_ok(timeout=30)
    assert "watcher stopped: 0 run(s) (0 complete, 0 failed), 0 arrival(s) taken" in out


@pytest.mark.slow
def test_a_failed_run_is_recorded_and_the_loop_goes_on(ws: Path, background: list[Kiln]) -> None:
    path = pipeline_file(ws)
    # nap=-1: time.sleep(-1) raises, so every run fails in its step
    proc = kiln(
        "run", str(path), "--every", "0.2s", "--max-runs", "2", "--param", "nap=-1", cwd=ws
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert out.count("error: step 'record' (record) failed in run") == 2
    assert "schedule stopped: 2 run(s) (0 complete, 2 failed)" in out

    (ws / "in").mkdir()
    (ws / "in" / "a.csv").write_text("a\n")
    proc = kiln(
        "run", str(path), "--on-new-data", "in", "--settle", "0s", "--max-runs", "1",
        "--param", "nap=-1", cwd=ws,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "watcher stopped: 1 run(s) (0 complete, 1 failed), 1 arrival(s) taken" in out
    # the resume command gives the failed run the same new data
    assert f"--param 'new_data=[\"{ws / 'in' / 'a.csv'}\"]'" in out
    state = json.loads(next((ws / ".kiln" / "triggers").glob("ct-*.json")).read_text())
    assert state["processed"]["a.csv"]["state"] == "FAILED"


# ---------------------------------------------------------------------------- new data


@pytest.mark.slow
def test_watcher_takes_a_file_once_it_settles_once_and_not_again_after_restart(
    ws: Path, background: list[Kiln]
) -> None:
    path = pipeline_file(ws)
    incoming = ws / "incoming"
    incoming.mkdir()
    watcher = start(
        background, ws, "run", str(path), "--on-new-data", "incoming", "--settle", "2s",
        "--max-runs", "2", name="watcher",
    )  # fmt: skip
    wait_for("the watcher to start", lambda: "watching" in watcher.output)

    # a file written slowly: a line every 0.1 s, far less than the settle time apart
    slow = incoming / "slow.csv"
    with slow.open("w") as f:
        for i in range(25):
            f.write(f"{i},row\n")
            f.flush()
            time.sleep(0.1)
            assert log_entries(ws, "start") == [], "a run started on a half-written file"
    wait_for("a run on slow.csv", lambda: len(log_entries(ws)) == 1)
    first = log_entries(ws)[0]
    assert first["new_data"] == [str(slow)]
    assert first["lines"] == {str(slow): 25}  # the whole file, not part of it
    assert json.loads(first["env"]) == [str(slow)]

    # an atomic arrival: written under a hidden name, then renamed
    hidden = incoming / ".b.csv.tmp"
    hidden.write_text("1\n2\n")
    hidden.rename(incoming / "b.csv")
    out = watcher.finished_ok()  # --max-runs 2
    entries = log_entries(ws)
    assert [e["new_data"] for e in entries] == [[str(slow)], [str(incoming / "b.csv")]]
    assert "watcher stopped: 2 run(s) (2 complete, 0 failed), 2 arrival(s) taken" in out

    # a restart takes neither again: its one run is for the next new file only
    again = start(
        background, ws, "run", str(path), "--on-new-data", "incoming", "--settle", "0.2s",
        "--max-runs", "1", name="again",
    )  # fmt: skip
    wait_for("the restarted watcher", lambda: "watching" in again.output)
    assert "2 taken before" in again.output
    (incoming / "c.csv").write_text("c\n")
    again.finished_ok()
    entries = log_entries(ws)
    assert len(entries) == 3
    assert entries[2]["new_data"] == [str(incoming / "c.csv")]

    triggers = run_triggers(ws)
    assert [t["arrivals"] for t in triggers] == [["slow.csv"], ["b.csv"], ["c.csv"]]
    assert all(t["kind"] == "new_data" for t in triggers)
    assert triggers[0]["folder"] == str(incoming)
    state = json.loads(next((ws / ".kiln" / "triggers").glob("ct-*.json")).read_text())
    assert sorted(state["processed"]) == ["b.csv", "c.csv", "slow.csv"]


@pytest.mark.slow
def test_watcher_takes_partition_folders_one_run_each_for_a_str_parameter(
    ws: Path, background: list[Kiln]
) -> None:
    path = pipeline_file(ws, new_data_type="str")
    incoming = ws / "incoming"
    for day in ("2026-11-25", "2026-11-26"):
        part = incoming / f"date={day}"
        part.mkdir(parents=True)
        (part / "part-0.parquet").write_bytes(b"PAR1")
        (part / "_SUCCESS").touch()
    (incoming / "date=2026-11-27").mkdir()  # not written yet: no matching file in it
    (incoming / "notes.txt").write_text("not data\n")  # does not match the pattern
    (incoming / "_temporary").mkdir()  # hidden, as Spark's work folder
    (incoming / "_temporary" / "part-9.parquet").write_bytes(b"PAR1")
    watcher = start(
        background, ws, "run", str(path), "--on-new-data", "incoming", "--pattern", "*.parquet",
        "--settle", "0.2s", "--max-runs", "3", name="watcher",
    )  # fmt: skip
    wait_for("two runs", lambda: len(log_entries(ws)) == 2)
    late = incoming / "date=2026-11-27"
    (late / "part-0.parquet").write_bytes(b"PAR1")
    out = watcher.finished_ok()
    assert "3 arrival(s) taken" in out
    assert [e["new_data"] for e in log_entries(ws)] == [
        str(incoming / "date=2026-11-25"),
        str(incoming / "date=2026-11-26"),
        str(late),
    ]
    triggers = run_triggers(ws)
    assert [t["arrivals"] for t in triggers] == [
        ["date=2026-11-25"],
        ["date=2026-11-26"],
        ["date=2026-11-27"],
    ]
    assert all(t["pattern"] == "*.parquet" for t in triggers)
    listed = kiln("runs", cwd=ws).stdout
    assert "new data: date=2026-11-27" in listed, listed


@pytest.mark.slow
def test_two_watchers_of_one_folder_take_a_file_once(ws: Path, background: list[Kiln]) -> None:
    path = pipeline_file(ws)
    (ws / "in").mkdir()
    args = ("run", str(path), "--on-new-data", "in", "--settle", "0.2s", "--max-runs", "1")
    one, two = (start(background, ws, *args, name=name) for name in ("one", "two"))
    wait_for("both watchers", lambda: "watching" in one.output and "watching" in two.output)
    (ws / "in" / "a.csv").write_text("a\n")
    wait_for("a run", lambda: len(log_entries(ws)) == 1)
    wait_for(
        "the other watcher to see it was taken",
        lambda: "a.csv was taken by run" in one.output + two.output,
    )
    other, runner = (one, two) if "a.csv was taken by run" in one.output else (two, one)
    runner.finished_ok()
    other.proc.send_signal(signal.SIGINT)
    assert "watcher stopped: 0 run(s)" in other.finished_ok(timeout=30)
    assert len(log_entries(ws)) == 1


# ---------------------------------------------------------------------------- the lock


@pytest.mark.slow
def test_two_runs_of_one_pipeline_never_overlap(ws: Path, background: list[Kiln]) -> None:
    path = pipeline_file(ws)
    gate = ws / "gate"
    first = start(
        background, ws, "run", str(path), "--param", "label=first", "--param", f"gate={gate}",
        name="first",
    )  # fmt: skip
    wait_for("the first run to start", lambda: len(log_entries(ws, "start")) == 1)

    busy = kiln("run", str(path), "--param", "label=busy", "--no-wait", cwd=ws)
    assert_clean_error(
        busy, "pipeline 'ct' is already running", f"pid {first.proc.pid}", "--no-wait", code=75
    )

    second = start(background, ws, "run", str(path), "--param", "label=second", name="second")
    wait_for("the second run to wait", lambda: "waiting for it to finish" in second.output)
    assert [e["label"] for e in log_entries(ws, "start")] == ["first"]
    gate.touch()
    first.finished_ok()
    second.finished_ok()
    entries = log_entries(ws)
    assert [e["label"] for e in entries] == ["first", "second"]
    assert_disjoint(entries)


@pytest.mark.slow
def test_a_killed_holder_releases_the_lock(ws: Path, background: list[Kiln]) -> None:
    path = pipeline_file(ws)
    gate = ws / "gate"
    holder = start(
        background, ws, "run", str(path), "--workers", "0", "--param", f"gate={gate}",
        name="holder",
    )  # fmt: skip
    wait_for("the run to start", lambda: len(log_entries(ws, "start")) == 1)
    assert log_entries(ws, "start")[0]["pid"] == holder.proc.pid  # in the kiln process itself
    holder.proc.send_signal(signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL
    after = kiln("run", str(path), "--param", "label=after", "--no-wait", cwd=ws)
    assert after.returncode == 0, after.stdout + after.stderr
    assert [e["label"] for e in log_entries(ws)] == ["after"]
    runs = kiln("runs", cwd=ws).stdout
    assert "ABORTED" in runs
    assert "COMPLETE" in runs


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--every", "1x"], ["--every '1x' is not an interval", "1h30m"]),
        (["--every", "0s"], ["--every '0s' must be more than zero"]),
        (["--every", "-5m"], ["--every '-5m': an interval cannot be negative"]),
        (["--every", "90"], ["--every '90' has no unit", "90s?"]),
        (["--on-new-data", "missing"], ["--on-new-data missing: no such folder", "mkdir -p"]),
        (["--on-new-data", "ct.py"], ["--on-new-data ct.py is not a folder"]),
        (["--every", "1h", "--on-new-data", "in"], ["choose one of --every and --on-new-data"]),
        (["--max-runs", "2"], ["--max-runs only goes with --every or --on-new-data"]),
        (["--settle", "1s"], ["--settle only goes with --on-new-data"]),
        (["--on-new-data", "in", "--settle", "soon"], ["--settle 'soon' is not an interval"]),
        (["--on-new-data", "in", "--pattern", "a/*.csv"], ["--pattern 'a/*.csv'", "file-name"]),
        (["--every", "1s", "--no-wait"], ["--no-wait is for a single run"]),
        (
            ["--on-new-data", "in", "--param", "new_data=[]"],
            ["the watcher sets new_data to what arrived; leave out the --param"],
        ),
    ],
)
def test_bad_trigger_options(ws: Path, args: list[str], needles: list[str]) -> None:
    path = pipeline_file(ws)
    (ws / "in").mkdir()
    proc = kiln("run", str(path), *args, cwd=ws, timeout=60)
    assert_clean_error(proc, *needles)
    assert proc.stderr.count("error:") == 1
    assert "no runs yet" in kiln("runs", cwd=ws).stdout


def test_new_data_of_an_unusable_type(ws: Path) -> None:
    path = pipeline_file(ws, new_data_type="int")
    (ws / "in").mkdir()
    assert_clean_error(
        kiln("run", str(path), "--on-new-data", "in", cwd=ws),
        "pipeline 'ct' declares new_data (int), which cannot take the new paths",
        "new_data: list[str] = []",
    )
