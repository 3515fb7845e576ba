"""Several OS processes writing one metadata database at the same moment, on SQLite and
PostgreSQL: every write succeeds (it waits for the lock, never fails for it) and every row lands.

Each worker is a fresh ``python -c`` process given the database URL as a string; they all start
their work together when the test creates a "go" file, after each has reported ready.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from kiln.metadata import (
    SCHEMA_VERSION,
    Artifact,
    ArtifactState,
    EventType,
    ExecutionState,
    MetadataStore,
    TypeKind,
)

# Waits for the go file, then writes N steps the way a pipeline run does: a RUNNING execution
# with a PENDING output, then COMPLETE with the output LIVE, in a pipeline context every worker
# shares and a run context of its own, reading one dataset every worker shares.
WRITER = r"""
import json, sys, time
from pathlib import Path
from kiln.metadata import Artifact, ArtifactState, Context, Execution, ExecutionState, MetadataStore

url, tag, n, shared_id, ready, go = sys.argv[1:7]
n, shared_id = int(n), int(shared_id)
store = MetadataStore(url)
shared = store.get_artifact(shared_id)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
t0 = time.perf_counter()
store.put_artifact_type("Out", {"i": "INT", "worker": "STRING"})
store.put_execution_type("Step", {"i": "INT"})
store.put_context_type("Pipeline")
store.put_context_type("Run")
pipeline = store.put_context(Context("Pipeline", "shared"))
run = store.put_context(Context("Run", tag))
for i in range(n):
    out = Artifact("Out", f"{tag}/{i}", properties={"i": i, "worker": tag})
    x = Execution("Step", name=f"{tag}-{i}", cache_key=f"{tag}-{i}", properties={"i": i})
    store.put_execution(x, inputs={"examples": [shared]}, outputs={"out": [out]},
                        contexts=[pipeline, run])
    out.state = ArtifactState.LIVE
    out.fingerprint = f"fp-{tag}-{i}"
    x.state = ExecutionState.COMPLETE
    store.put_execution(x, outputs={"out": [out]}, contexts=[pipeline, run])
    if i % 10 == 0:
        store.put_artifacts([Artifact("Out", f"{tag}/extra/{i}", ArtifactState.LIVE)])
print(json.dumps({"tag": tag, "seconds": time.perf_counter() - t0}))
"""

# Reads in a loop while the writers write: readers never fail because a writer holds the lock.
READER = r"""
import sys, time
from pathlib import Path
from kiln.metadata import MetadataStore

url, ready, go, stop = sys.argv[1:5]
store = MetadataStore(url, busy_timeout=2)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
reads = 0
while not Path(stop).exists():
    store.get_executions(limit=20)
    store.get_artifacts(limit=20)
    reads += 1
print(reads)
"""

# Waits for the go file, then opens a database nobody has created yet and writes to it.
OPENER = r"""
import sys, time
from pathlib import Path
from kiln.metadata import Artifact, MetadataStore

url, tag, ready, go = sys.argv[1:5]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.001)
store = MetadataStore(url)
store.put_artifact_type("Thing", {"who": "STRING"})
store.put_artifacts([Artifact("Thing", f"t/{tag}", properties={"who": tag})])
print("ok", tag)
"""


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _release(procs: list[subprocess.Popen[str]], ready: list[Path], go: Path) -> None:
    """Wait until every process is ready, then let them all go at once."""
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready):
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                raise AssertionError(f"a worker exited before the start:\n{out}\n{err}")
        assert time.monotonic() < deadline, "workers never became ready"
        time.sleep(0.01)
    go.touch()


def _finish(p: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"worker failed (exit {p.returncode}):\n{out}\n{err}"
    assert "Traceback" not in err, err
    return out


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_processes_writing_at_once_all_succeed(metadata_url: str, tmp_path: Path) -> None:
    workers, n = 2, 200
    with MetadataStore(metadata_url) as store:
        store.put_artifact_type("Dataset")
        [shared] = store.put_artifacts([Artifact("Dataset", "d/shared", ArtifactState.LIVE)])
    assert shared.id is not None
    go, stop = tmp_path / "go", tmp_path / "stop"
    tags = [f"w{i}" for i in range(workers)]
    ready = [tmp_path / f"ready-{t}" for t in [*tags, "reader"]]
    procs = [
        _start(WRITER, metadata_url, tag, str(n), str(shared.id), str(r), str(go))
        for tag, r in zip(tags, ready[:-1], strict=True)
    ]
    reader = _start(READER, metadata_url, str(ready[-1]), str(go), str(stop))
    try:
        _release([*procs, reader], ready, go)
        reports = [json.loads(_finish(p)) for p in procs]
    finally:
        stop.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert int(_finish(reader, timeout=30)) > 0
    assert sorted(r["tag"] for r in reports) == tags

    extras = len(range(0, n, 10))
    with MetadataStore(metadata_url) as store:
        # one type and one shared context, however many processes registered them at once
        assert [t.name for t in store.get_types(TypeKind.ARTIFACT)] == ["Dataset", "Out"]
        assert [t.name for t in store.get_types(TypeKind.EXECUTION)] == ["Step"]
        assert len(store.get_contexts(type_name="Pipeline")) == 1
        pipeline = store.get_context("Pipeline", "shared")

        executions = store.get_executions()
        assert len(executions) == workers * n
        assert {x.state for x in executions} == {ExecutionState.COMPLETE}
        assert len({x.cache_key for x in executions}) == workers * n
        outs = store.get_artifacts(type_name="Out")
        assert len(outs) == workers * (n + extras)
        assert {a.state for a in outs} == {ArtifactState.LIVE}
        for tag in tags:
            run = store.get_context("Run", tag)
            mine = store.get_executions(context_id=run.id)
            assert sorted(x.properties["i"] for x in mine) == list(range(n))
            assert len(store.get_artifacts(context_id=run.id)) == n + 1  # outputs + shared input
            produced = [a for a in outs if a.properties.get("worker") == tag]
            assert sorted(a.properties["i"] for a in produced) == list(range(n))
            assert all(a.fingerprint == f"fp-{tag}-{a.properties['i']}" for a in produced)
        assert len(store.get_artifacts(context_id=pipeline.id)) == workers * n + 1
        assert len(store.get_executions(context_id=pipeline.id)) == workers * n
        inputs = store.get_events(artifact_ids=[shared.id], type=EventType.INPUT)
        assert len(inputs) == workers * n
        assert len(store.get_events(type=EventType.OUTPUT)) == workers * n
        # a few spot checks through the public lookups
        for x in executions[:: n // 4]:
            assert x.id is not None
            assert [a.id for a in store.get_inputs(x.id)["examples"]] == [shared.id]
            [out] = store.get_outputs(x.id)["out"]
            assert out.uri == f"{x.name.replace('-', '/')}"
    assert _count(metadata_url, "events") == 2 * workers * n
    assert _count(metadata_url, "associations") == 2 * workers * n
    assert _count(metadata_url, "attributions") == 2 * workers * n + workers + 1


def _race_to_create(url: str, tmp_path: Path, round_: int, openers: int) -> None:
    go = tmp_path / f"go-{round_}"
    ready = [tmp_path / f"ready-{round_}-{i}" for i in range(openers)]
    procs = [_start(OPENER, url, f"p{i}", str(r), str(go)) for i, r in enumerate(ready)]
    try:
        _release(procs, ready, go)
        outs = [_finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(o.split()[1] for o in outs) == [f"p{i}" for i in range(openers)]
    with MetadataStore(url) as store:
        assert sorted(a.uri for a in store.get_artifacts()) == [f"t/p{i}" for i in range(openers)]
        assert [t.name for t in store.get_types(TypeKind.ARTIFACT)] == ["Thing"]
        assert store.schema_version == SCHEMA_VERSION
    assert _count(url, "kiln_schema") == 1


def test_processes_creating_a_new_database_at_once_all_succeed(
    metadata_url: str, tmp_path: Path
) -> None:
    openers = 4
    if metadata_url.startswith("sqlite"):
        # a few rounds, each on a database file that does not exist yet
        for round_ in range(3):
            path = tmp_path / f"new-{round_}.db"
            assert not path.exists()
            _race_to_create(f"sqlite:///{path}", tmp_path, round_, openers)
    else:
        # the fixture's database is brand new and empty: no Kiln table in it yet
        engine = sa.create_engine(metadata_url)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
        engine.dispose()
        _race_to_create(metadata_url, tmp_path, 0, openers)


def test_opening_a_new_sqlite_database_waits_for_a_lock_held_on_it(tmp_path: Path) -> None:
    """Switching a new database to WAL needs an exclusive lock, and SQLite fails that at once,
    busy timeout or not, while another connection writes: the store must wait its turn instead.
    """
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE unrelated (x INTEGER)")  # a database still in rollback mode
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO unrelated VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        start = time.monotonic()
        with MetadataStore(f"sqlite:///{path}", busy_timeout=20) as store:
            waited = time.monotonic() - start
            store.put_artifact_type("Thing")
            [a] = store.put_artifacts([Artifact("Thing", "t/1")])
            assert store.get_artifact(a.id).uri == "t/1"
    finally:
        release.join()
        holder.close()
    assert 0.3 <= waited < 15
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT x FROM unrelated").fetchall() == [(1,)]
    finally:
        check.close()
