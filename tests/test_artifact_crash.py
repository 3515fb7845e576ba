"""A crash at any moment leaves no half artifact visible.

A real ``kiln run`` writes artifacts slowly; its whole process group (the CLI and its worker
processes) gets SIGKILL at moments spread over the run. After each kill, every LIVE artifact in the
metadata must have its complete folder under the artifact root with the recorded fingerprint, and
nothing an unfinished execution wrote may be LIVE. Rerunning then completes, from the cache where
steps had finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import KILN, kiln
from kiln import metadata as md
from kiln.artifacts import MANIFEST, fingerprint
from kiln.workspace import Workspace

PARTS = 40

PIPELINE = f'''\
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from kiln import Artifact, Metrics, Table, component, pipeline


class SlowFolder(Artifact):
    """Many small files written one at a time, so that a kill can land half-way."""

    def _write(self, folder: Path) -> dict[str, Any]:
        count, seed = self._value
        for i in range(count):
            (folder / f"part-{{i:03d}}.bin").write_bytes(bytes([(seed + i) % 256]) * 8192)
            time.sleep(0.02)
        return {{}}


@component
def make_parts(seed: int = 0) -> SlowFolder:
    return SlowFolder(({PARTS}, seed))


@component
def make_table(parts: SlowFolder, seed: int = 0) -> Table:
    files = sorted(parts.read().glob("part-*.bin"))
    rows = 150_000
    return Table(
        pa.table(
            {{
                "i": pa.array(range(rows), pa.int64()),
                "x": pa.array([float(seed * rows + i) for i in range(rows)]),
                "part": pa.array([files[i % len(files)].name for i in range(rows)]),
            }}
        )
    )


@component
def summarise(table: Table) -> Metrics:
    t = table.read()
    return Metrics({{"rows": t.num_rows, "sum_x": sum(t["x"].to_pylist())}})


@pipeline(name="crashy")
def crashy(seed: int = 0) -> None:
    parts = make_parts(seed=seed)
    table = make_table(parts.output, seed=seed)
    summarise(table.output)
'''


def _verify(root: Path) -> dict[str, int]:
    """Check the crash guarantee in the workspace at ``root``; returns LIVE artifacts per type."""
    ws = Workspace(root)
    try:
        store = ws.metadata
        live = store.get_artifacts(state=md.ArtifactState.LIVE)
        artifact_root = Path(ws.settings.artifact_root).resolve()
        for a in live:
            assert not a.uri.startswith(".staging"), a
            path = ws.artifacts.path_of(a.uri)
            assert path.is_relative_to(artifact_root)
            assert path.is_dir(), f"LIVE artifact {a.id} ({a.uri}) has no folder"
            assert a.fingerprint is not None
            assert fingerprint(path) == a.fingerprint, f"LIVE artifact {a.id} is incomplete"
            manifest = json.loads((path / MANIFEST).read_text())
            assert manifest["type"] == a.type_name
            if a.type_name == "SlowFolder":
                assert len(list(path.glob("part-*.bin"))) == PARTS
            elif a.type_name == "Table":
                assert pq.read_metadata(path / "data.parquet").num_rows == a.properties["num_rows"]
            elif a.type_name == "Metrics":
                assert json.loads((path / "metrics.json").read_text())["rows"] == 150_000

        live_ids = {a.id for a in live}
        produced: set[int | None] = set()
        for x in store.get_executions():
            assert x.id is not None
            outputs = [a for arts in store.get_outputs(x.id).values() for a in arts]
            if x.state in (md.ExecutionState.COMPLETE, md.ExecutionState.CACHED):
                assert all(a.id in live_ids for a in outputs), x
            else:
                # Killed mid-step (RUNNING forever) or failed: nothing it wrote is visible.
                assert not [a for a in outputs if a.state == md.ArtifactState.LIVE], x
            if x.state == md.ExecutionState.COMPLETE:
                produced |= {a.id for a in outputs}
        # Every LIVE artifact was made by a COMPLETE execution.
        assert live_ids <= produced
        # PENDING artifacts (never published, or published but not yet recorded) stay invisible.
        for a in store.get_artifacts(state=md.ArtifactState.PENDING):
            assert a.id not in live_ids
        counts: dict[str, int] = {}
        for a in live:
            counts[a.type_name] = counts.get(a.type_name, 0) + 1
        return counts
    finally:
        ws.close()


def _kill_after(root: Path, seed: int, delay: float, log: Path) -> bool:
    """Start ``kiln run``, SIGKILL its process group after ``delay`` s; True if it was killed."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KILN, "run", "pipe.py", "--param", f"seed={seed}"],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        killed = proc.poll() is None
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
        except ProcessLookupError:
            killed = False
        proc.wait(timeout=30)
    # Let the killed workers die before anyone looks at the files (a zombie has stopped writing).
    deadline = time.monotonic() + 10
    while _alive_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def _alive_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (not yet exited)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: wait until the group is gone altogether
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


@pytest.mark.slow
def test_kill_at_any_moment_leaves_no_half_artifact(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    assert kiln("init", str(root)).returncode == 0
    (root / "pipe.py").write_text(PIPELINE)

    start = time.monotonic()
    first = kiln("run", "pipe.py", "--param", "seed=0", cwd=root)
    full = time.monotonic() - start
    assert first.returncode == 0, first.stdout + first.stderr
    assert _verify(root) == {"SlowFolder": 1, "Table": 1, "Metrics": 1}

    # Kill moments spread over one whole run (measured, so a slow machine is covered too).
    delays = [0.05, *(full * k / 7 for k in range(1, 8))]
    killed = half_written = 0
    staging = root / ".kiln" / "artifacts" / ".staging"
    for seed, delay in enumerate(delays, start=1):
        killed += _kill_after(root, seed, delay, tmp_path / f"killed-{seed}.log")
        # What a kill in the middle of a write leaves: a staging folder with some of the parts.
        leftovers = list(staging.iterdir()) if staging.exists() else []
        half_written += any(0 < len(list(f.glob("part-*.bin"))) < PARTS for f in leftovers)
        shutil.rmtree(staging, ignore_errors=True)  # to tell the next kill's leftovers apart
        counts = _verify(root)
        assert counts.get("Metrics", 0) in (seed, seed + 1)

        again = kiln("run", "pipe.py", "--param", f"seed={seed}", cwd=root)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "complete" in again.stdout
        # One of each per seed: the rerun reused what the killed run finished, made the rest.
        assert _verify(root) == {"SlowFolder": seed + 1, "Table": seed + 1, "Metrics": seed + 1}

    assert killed >= len(delays) // 2, f"only {killed} of {len(delays)} runs were killed mid-way"
    assert half_written, "no kill landed while an artifact was half-written; the test missed it"

    # Collecting garbage removes what the kills left in staging, and no LIVE artifact.
    ws = Workspace(root)
    ws.artifacts.collect_garbage(older_than_s=0)
    ws.close()
    assert _verify(root) == {
        "SlowFolder": len(delays) + 1,
        "Table": len(delays) + 1,
        "Metrics": len(delays) + 1,
    }
    assert not staging.exists() or not any(staging.iterdir())
