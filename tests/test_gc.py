"""`kiln gc` after a run killed with SIGKILL mid-step: the run reads ABORTED, its step FAILED, its
pending output DELETED, leftovers removed, LIVE artifacts untouched, and the rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import KILN, kiln
from kiln import metadata as md
from kiln.artifacts import fingerprint
from kiln.workspace import Workspace

PIPELINE = textwrap.dedent(
    """
    import time

    from kiln import Metrics, component, pipeline


    @component
    def quick() -> Metrics:
        return Metrics({"ok": 1})


    @component
    def slow(m: Metrics, seconds: float = 60.0) -> Metrics:
        time.sleep(seconds)
        return Metrics({"slept": seconds})


    @pipeline
    def killed(seconds: float = 60.0) -> None:
        slow(quick().output, seconds=seconds)
    """
)


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_gc_after_a_killed_run(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path)
    pipe = tmp_path / "killed.py"
    pipe.write_text(PIPELINE)
    proc = subprocess.Popen(
        [KILN, "run", str(pipe)],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = ws.metadata

    def slow_is_running() -> bool:
        xs = store.get_executions(type_name="slow", state=md.ExecutionState.RUNNING)
        return bool(xs)

    _wait_for(slow_is_running)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    listed = kiln("runs", cwd=tmp_path)
    assert "ABORTED" in listed.stdout, listed.stdout

    # an orphaned folder (published, never recorded) and a LIVE artifact to keep
    orphan = ws.artifacts.local_root / "Metrics" / "0123456789abcdef0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "metrics.json").write_text("{}")
    live = store.get_artifacts(state=md.ArtifactState.LIVE)
    assert len(live) == 1  # quick's output

    preview = kiln("gc", "--older-than", "0", "--dry-run", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert "1 dead run(s) would be marked ABORTED" in preview.stdout, preview.stdout
    assert orphan.exists()

    done = kiln("gc", "--older-than", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 dead run(s) were marked ABORTED (1 step(s) FAILED, 1 pending output(s)" in done.stdout
    assert "orphaned Metrics/0123456789abcdef0123456789abcdef" in done.stdout
    assert not orphan.exists()
    assert not any((ws.artifacts.local_root / ".staging").iterdir())

    slow_x = store.get_executions(type_name="slow")[0]
    assert slow_x.state == md.ExecutionState.FAILED
    assert "aborted" in str(slow_x.properties["error"])
    assert slow_x.id is not None
    assert [a.state for a in store.get_outputs(slow_x.id)["output"]] == [md.ArtifactState.DELETED]
    kept = store.get_artifact(live[0].id or -1)
    assert kept.state == md.ArtifactState.LIVE
    assert fingerprint(ws.artifacts.path_of(kept.uri)) == kept.fingerprint

    again = kiln("gc", "--older-than", "0", cwd=tmp_path)
    assert "0 dead run(s) were marked ABORTED" in again.stdout

    rerun = kiln("run", str(pipe), "--param", "seconds=0", "--explain-cache", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "quick  hit" in rerun.stdout
    ws.close()
