"""The local runner: topological order, independent steps at once in worker processes, failures
that stop the run cleanly, and resuming from the cache.

Components record ``os.getpid()`` and wall-clock timestamps into their outputs, so the tests see
where and when each step really ran.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kiln import metadata as md
from kiln.artifacts import Metrics
from kiln.errors import RunFailedError
from kiln.orchestration import (
    RUN_CONTEXT,
    LocalRunner,
    RunResult,
    component,
    load_pipeline,
    pipeline,
    run,
)
from kiln.orchestration._run import default_workers
from kiln.workspace import Workspace

HEADER = """\
from __future__ import annotations

import os
import time
from typing import NamedTuple

import pyarrow as pa

from kiln import Metrics, Table, component, pipeline


@component
def nap(seconds: float = 0.0, label: str = "") -> Metrics:
    start = time.time()
    time.sleep(seconds)
    return Metrics({"pid": os.getpid(), "start": start, "end": time.time(), "label": label})


@component
def join(left: Metrics, right: Metrics) -> Metrics:
    return Metrics({"pid": os.getpid(), "start": time.time(), "end": time.time(),
                    "labels": [left.read()["label"], right.read()["label"]]})
"""


def write(path: Path, body: str) -> Path:
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def run_file(ws: Workspace, path: Path, *, workers: int | None = 2, **params: Any) -> RunResult:
    return run(
        load_pipeline(path),
        params,
        workspace=ws,
        runner=LocalRunner(workers),
        raise_on_failure=False,
    )


def value(ws: Workspace, art: md.Artifact) -> Any:
    return Metrics.stored(ws.artifacts.path_of(art.uri)).read()


def states(result: RunResult) -> dict[str, str]:
    return {name: step.state for name, step in result.steps.items()}


def staging_left(ws: Workspace) -> list[Path]:
    staging = ws.artifacts.local_root / ".staging"
    return list(staging.iterdir()) if staging.exists() else []


# ---------------------------------------------------------------------------- order and parallelism

FAN = """
@pipeline(name="fan")
def fan(seconds: float = 1.0) -> None:
    a = nap(seconds=seconds, label="a", step_name="a")
    b = nap(seconds=seconds, label="b", step_name="b")
    join(a.output, b.output)
"""


RENDEZVOUS = """
from pathlib import Path


@component
def meet(me: str, other: str, folder: str, pause: float = 0.3) -> Metrics:
    \"\"\"Announce this step, then wait for the other one: only concurrent steps both finish.\"\"\"
    start = time.time()
    Path(folder, me).write_text(str(os.getpid()))
    deadline = start + 30
    while not Path(folder, other).exists():
        if time.time() > deadline:
            raise TimeoutError(f"{other} did not start while {me} was running")
        time.sleep(0.01)
    time.sleep(pause)
    return Metrics({"pid": os.getpid(), "start": start, "end": time.time(), "label": me})


@pipeline(name="rendezvous")
def rendezvous(folder: str) -> None:
    a = meet(me="a", other="b", folder=folder, step_name="a")
    b = meet(me="b", other="a", folder=folder, step_name="b")
    join(a.output, b.output)
"""


def test_independent_steps_overlap_in_different_worker_processes(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "meeting"
    folder.mkdir()
    path = write(tmp_path / "rendezvous.py", RENDEZVOUS)
    result = run_file(workspace, path, workers=2, folder=str(folder))
    assert states(result) == {"a": "COMPLETE", "b": "COMPLETE", "join": "COMPLETE"}
    a, b, j = (value(workspace, result.output(s)) for s in ("a", "b", "join"))
    assert a["pid"] != b["pid"]
    assert os.getpid() not in {a["pid"], b["pid"], j["pid"]}
    # each waited for the other to start: both were running at the same moment
    assert max(a["start"], b["start"]) < min(a["end"], b["end"])
    # the join waited for both, and reused one of the two workers
    assert j["start"] >= max(a["end"], b["end"])
    assert j["pid"] in {a["pid"], b["pid"]}
    assert j["labels"] == ["a", "b"]
    x = workspace.metadata.get_execution(result.steps["a"].execution_id or -1)
    assert x.properties["pid"] == a["pid"]
    assert x.properties["duration_ms"] >= 300


def test_default_runner_overlaps_independent_steps_too(
    workspace: Workspace, tmp_path: Path
) -> None:
    """One worker per core: on this machine's (at least two) cores the rendezvous completes."""
    if default_workers() < 2:
        pytest.skip("needs two cores")
    folder = tmp_path / "meeting"
    folder.mkdir()
    result = run(
        load_pipeline(write(tmp_path / "rendezvous.py", RENDEZVOUS)),
        {"folder": str(folder)},
        workspace=workspace,
    )
    assert states(result) == {"a": "COMPLETE", "b": "COMPLETE", "join": "COMPLETE"}


def test_one_worker_runs_independent_steps_one_after_another(
    workspace: Workspace, tmp_path: Path
) -> None:
    result = run_file(workspace, write(tmp_path / "fan.py", FAN), workers=1, seconds=0.3)
    a, b = (value(workspace, result.output(s)) for s in ("a", "b"))
    assert a["pid"] == b["pid"] != os.getpid()
    first, second = sorted([a, b], key=lambda m: m["start"])
    assert second["start"] >= first["end"]


def test_default_is_one_worker_per_core() -> None:
    assert LocalRunner().workers == default_workers()
    assert default_workers() == len(os.sched_getaffinity(0))
    assert LocalRunner(0).workers == 0


def test_a_chain_runs_in_topological_order(workspace: Workspace, tmp_path: Path) -> None:
    path = write(
        tmp_path / "chain.py",
        """
        @component
        def after(m: Metrics, label: str = "") -> Metrics:
            return Metrics({"pid": os.getpid(), "start": time.time(), "end": time.time(),
                            "label": label, "before": m.read()["label"]})

        @pipeline
        def chain() -> None:
            c = nap(seconds=0.2, label="first", step_name="first")
            s = after(c.output, label="second", step_name="second")
            after(s.output, label="third", step_name="third")
        """,
    )
    result = run_file(workspace, path, workers=2)
    assert list(result.steps) == ["first", "second", "third"]
    first, second, third = (value(workspace, result.output(s)) for s in result.steps)
    assert second["before"] == "first"
    assert third["before"] == "second"
    assert first["end"] <= second["start"] <= second["end"] <= third["start"]


def test_after_orders_steps_that_share_no_data(workspace: Workspace, tmp_path: Path) -> None:
    path = write(
        tmp_path / "ordered.py",
        """
        @pipeline
        def ordered() -> None:
            late = nap(seconds=0.0, label="late", step_name="late")
            early = nap(seconds=0.3, label="early", step_name="early")
            late.after(early)
        """,
    )
    result = run_file(workspace, path, workers=2)
    late, early = value(workspace, result.output("late")), value(workspace, result.output("early"))
    assert late["start"] >= early["end"]


# ---------------------------------------------------------------------------- in-process steps


def test_workers_zero_runs_every_step_in_this_process(
    workspace: Workspace, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "inproc.py",
        """
        @component
        def chatty() -> Metrics:
            print("hello from a step")
            return Metrics({"pid": os.getpid(), "label": "chatty"})

        @pipeline
        def inproc() -> None:
            a = nap(label="a", step_name="a")
            join(a.output, chatty().output)
        """,
    )
    result = run_file(workspace, path, workers=0)
    assert states(result) == {"a": "COMPLETE", "chatty": "COMPLETE", "join": "COMPLETE"}
    pids = {value(workspace, result.output(s))["pid"] for s in result.steps}
    assert pids == {os.getpid()}
    log = Path(result.steps["chatty"].log or "")
    assert "hello from a step" in log.read_text()
    assert "hello from a step" not in capfd.readouterr().out  # prints go to the step's log


def test_worker_step_prints_go_to_its_log(workspace: Workspace, tmp_path: Path) -> None:
    path = write(
        tmp_path / "logged.py",
        """
        import sys

        @component
        def loud() -> Metrics:
            print("to stdout")
            print("to stderr", file=sys.stderr)
            return Metrics({"pid": os.getpid()})

        @pipeline
        def logged() -> None:
            loud()
        """,
    )
    result = run_file(workspace, path, workers=1)
    assert value(workspace, result.output("loud"))["pid"] != os.getpid()
    text = Path(result.steps["loud"].log or "").read_text()
    assert "to stdout" in text
    assert "to stderr" in text


def test_a_component_defined_inside_a_function_still_runs(workspace: Workspace) -> None:
    def make(offset: int) -> Any:
        @component
        def shifted(n: int = 1) -> Metrics:
            return Metrics({"value": n + offset, "pid": os.getpid()})

        @pipeline(name="local_defs")
        def local_defs(n: int = 1) -> None:
            shifted(n=n)

        return local_defs

    result = run(make(10), {"n": 5}, workspace=workspace, runner=LocalRunner(2))
    assert result.state == "COMPLETE"
    out = value(workspace, result.output("shifted"))
    assert out["value"] == 15
    assert out["pid"] == os.getpid()  # not importable by name, so it ran here
    again = run(make(10), {"n": 5}, workspace=workspace, runner=LocalRunner(2))
    assert again.steps["shifted"].state == "CACHED"


def test_a_component_made_inside_the_pipeline_function_runs_beside_worker_steps(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "nested.py",
        """
        @pipeline
        def nested() -> None:
            @component
            def inner(m: Metrics) -> Metrics:
                return Metrics({"pid": os.getpid(), "label": "inner", "saw": m.read()["label"]})

            a = nap(label="a", step_name="a")
            inner(a.output)
        """,
    )
    result = run_file(workspace, path, workers=2)
    assert states(result) == {"a": "COMPLETE", "inner": "COMPLETE"}
    a, inner = value(workspace, result.output("a")), value(workspace, result.output("inner"))
    assert a["pid"] != os.getpid()
    assert inner["pid"] == os.getpid()
    assert inner["saw"] == "a"


# ---------------------------------------------------------------------------- outputs

SPLIT = """
class Halves(NamedTuple):
    head: Table
    tail: Table


@component
def halve(rows: int = 10) -> Halves:
    t = pa.table({"x": list(range(rows))})
    return Halves(Table(t.slice(0, rows // 2)), Table(t.slice(rows // 2)))


@component
def total(table: Table) -> Metrics:
    return Metrics({"sum": sum(table.read()["x"].to_pylist())})


@pipeline
def halves(rows: int = 10) -> None:
    h = halve(rows=rows)
    total(h.outputs["head"], step_name="total_head")
    total(h.outputs["tail"], step_name="total_tail")
"""


def test_named_tuple_outputs_are_separate_artifacts(workspace: Workspace, tmp_path: Path) -> None:
    result = run_file(workspace, write(tmp_path / "halves.py", SPLIT), workers=2, rows=10)
    assert states(result) == {
        "halve": "COMPLETE",
        "total_head": "COMPLETE",
        "total_tail": "COMPLETE",
    }
    head, tail = result.output("halve", "head"), result.output("halve", "tail")
    assert head.id != tail.id
    assert (head.type_name, head.properties["num_rows"]) == ("Table", 5)
    assert tail.properties["num_rows"] == 5
    assert value(workspace, result.output("total_head")) == {"sum": 0 + 1 + 2 + 3 + 4}
    assert value(workspace, result.output("total_tail")) == {"sum": 5 + 6 + 7 + 8 + 9}
    store = workspace.metadata
    outputs = store.get_outputs(result.steps["halve"].execution_id or -1)
    assert {n: [a.id for a in arts] for n, arts in outputs.items()} == {
        "head": [head.id],
        "tail": [tail.id],
    }
    inputs = store.get_inputs(result.steps["total_tail"].execution_id or -1)
    assert [a.id for a in inputs["table"]] == [tail.id]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("return Halves(Table(t), Table(t))[:1]", "must return a Halves of 2 artifacts"),
        ("return Halves(Table(t), Metrics({}))", "output 'tail' must be a Table artifact"),
        ("return Halves(Table(t), Table({'x': 1}))", "Table artifact needs a pyarrow.Table"),
    ],
)
def test_wrong_outputs_fail_the_step(
    workspace: Workspace, tmp_path: Path, body: str, needle: str
) -> None:
    path = write(
        tmp_path / "wrong.py",
        f"""
        class Halves(NamedTuple):
            head: Table
            tail: Table

        @component
        def halve() -> Halves:
            t = pa.table({{"x": [1]}})
            {body}

        @pipeline
        def wrong() -> None:
            halve()
        """,
    )
    result = run_file(workspace, path, workers=1)
    assert result.state == "FAILED"
    assert needle in (result.steps["halve"].error or "")
    assert staging_left(workspace) == []
    for arts in workspace.metadata.get_outputs(result.steps["halve"].execution_id or -1).values():
        assert all(a.state == md.ArtifactState.DELETED for a in arts)


# ---------------------------------------------------------------------------- failure and resume

FAILING = """
@component
def flaky(m: Metrics) -> Metrics:
    raise ValueError("flaky broke on " + m.read()["label"])


@pipeline(name="failing")
def failing(slow: float = 0.0) -> None:
    a = nap(label="a", step_name="a")
    b = nap(seconds=slow, label="slow", step_name="slow").after(a)
    f = flaky(a.output)
    join(f.output, b.output)
"""


def test_a_failing_step_stops_the_run_cleanly(workspace: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path / "failing.py", FAILING)
    with pytest.raises(RunFailedError) as info:
        run(load_pipeline(path), workspace=workspace, runner=LocalRunner(2))
    err = info.value
    assert err.step == "flaky"
    assert "step 'flaky' (flaky) failed: ValueError: flaky broke on a" in str(err)
    assert err.resume_command.startswith("kiln run ")
    assert str(path) in err.resume_command
    assert err.exit_code == 1

    store = workspace.metadata
    ctx = store.get_context(RUN_CONTEXT, err.run_id)
    assert ctx.properties["state"] == "FAILED"
    assert "step flaky: ValueError: flaky broke on a" in str(ctx.properties["error"])
    by_step = {x.name: x for x in store.get_executions(context_id=ctx.id)}
    assert by_step["flaky"].state == md.ExecutionState.FAILED
    error = str(by_step["flaky"].properties["error"])
    assert "ValueError: flaky broke on a" in error
    assert 'raise ValueError("flaky broke on "' in error  # the user's traceback line
    assert "kiln/orchestration" not in error  # without Kiln's own frames
    assert by_step["a"].state == md.ExecutionState.COMPLETE
    assert "join" not in by_step  # downstream of the failure never started
    assert staging_left(workspace) == []


def test_steps_already_running_finish_and_unstarted_ones_do_not(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = write(tmp_path / "failing.py", FAILING)
    result = run_file(workspace, path, workers=2, slow=0.8)
    # `slow` was running in the other worker when flaky failed: it completes and is recorded
    assert states(result) == {
        "a": "COMPLETE",
        "slow": "COMPLETE",
        "flaky": "FAILED",
        "join": "SKIPPED",
    }
    assert result.failed_step is not None
    assert result.failed_step.name == "flaky"
    assert result.state == "FAILED"


def test_rerun_after_fixing_resumes_from_the_cache(workspace: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path / "failing.py", FAILING)
    failed = run_file(workspace, path, workers=2, slow=0.1)
    assert failed.state == "FAILED"
    text = path.read_text()
    fixed = text.replace(
        'raise ValueError("flaky broke on " + m.read()["label"])',
        'return Metrics({"label": "fixed " + m.read()["label"]})',
    )
    assert fixed != text
    path.write_text(fixed)
    resumed = run_file(workspace, path, workers=2, slow=0.1)
    assert states(resumed) == {
        "a": "CACHED",
        "slow": "CACHED",
        "flaky": "COMPLETE",
        "join": "COMPLETE",
    }
    assert resumed.output("a").id == failed.output("a").id
    assert value(workspace, resumed.output("join"))["labels"] == ["fixed a", "slow"]
    assert resumed.steps["flaky"].reason.startswith("miss: code of ")
    assert resumed.steps["flaky"].reason.endswith(".flaky changed")


def test_a_worker_killed_mid_step_is_a_clear_failure(workspace: Workspace, tmp_path: Path) -> None:
    pid_file = tmp_path / "victim.pid"
    path = write(
        tmp_path / "victim.py",
        f"""
        @component
        def victim(m: Metrics) -> Metrics:
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
            return Metrics({{"label": "victim"}})

        @pipeline
        def killed() -> None:
            a = nap(label="a", step_name="a")
            v = victim(a.output)
            join(v.output, a.output)
        """,
    )

    def kill_when_started() -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            if pid_file.exists() and pid_file.read_text():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    started = time.time()
    result = run_file(workspace, path, workers=2)
    killer.join()
    assert time.time() - started < 30  # the run noticed; it did not wait for the sleep
    assert states(result) == {"a": "COMPLETE", "victim": "FAILED", "join": "SKIPPED"}
    error = result.steps["victim"].error or ""
    assert "WorkerDied" in error
    assert f"exited with code -{int(signal.SIGKILL)}" in error
    x = workspace.metadata.get_execution(result.steps["victim"].execution_id or -1)
    assert x.state == md.ExecutionState.FAILED
    assert staging_left(workspace) == []

    # the rerun (component fixed) resumes: `a` from the cache
    path.write_text(path.read_text().replace("time.sleep(60)", "pass"))
    resumed = run_file(workspace, path, workers=2)
    assert states(resumed) == {"a": "CACHED", "victim": "COMPLETE", "join": "COMPLETE"}


def test_in_process_failure_is_recorded_like_a_worker_failure(workspace: Workspace) -> None:
    @component
    def broken() -> Metrics:
        raise RuntimeError("in-process boom")

    @pipeline(name="inproc_fail")
    def inproc_fail() -> None:
        broken()

    result = run(inproc_fail, workspace=workspace, runner=LocalRunner(0), raise_on_failure=False)
    assert result.state == "FAILED"
    assert result.steps["broken"].state == "FAILED"
    assert "RuntimeError: in-process boom" in (result.steps["broken"].error or "")
    with pytest.raises(RunFailedError, match="step 'broken'"):
        result.check()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker"])
def test_an_output_the_metadata_refuses_fails_the_step_not_the_run(
    workspace: Workspace, tmp_path: Path, workers: int
) -> None:
    """A custom artifact type recording a property of the wrong type: the step FAILs cleanly."""
    pipe = write(
        tmp_path / "badprop.py",
        """
        from typing import Any, ClassVar

        from kiln.metadata import PropertyType


        class Counted(Metrics):
            properties: ClassVar[dict[str, PropertyType]] = {"count": PropertyType.INT}

            def _write(self, folder: Any) -> dict[str, Any]:
                super()._write(folder)
                return {"count": "three"}  # declared INT


        @component
        def make() -> Counted:
            return Counted({"n": 3})


        @component
        def use(c: Counted) -> Metrics:
            return Metrics(c.read())


        @pipeline
        def badprop() -> None:
            use(make().output)
        """,
    )
    result = run_file(workspace, pipe, workers=workers)
    assert states(result) == {"make": "FAILED", "use": "SKIPPED"}
    error = result.steps["make"].error or ""
    assert "MetadataError" in error
    assert "'count'" in error
    assert "INT" in error
    execution_id = result.steps["make"].execution_id
    assert execution_id is not None
    store = workspace.metadata
    assert store.get_execution(execution_id).state == md.ExecutionState.FAILED
    outputs = store.get_outputs(execution_id)["output"]
    assert [a.state for a in outputs] == [md.ArtifactState.DELETED]
    # the folder it had published is taken back: nothing under the root but staging
    assert not workspace.artifacts.exists(outputs[0].uri)
