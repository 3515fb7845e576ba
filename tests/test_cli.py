"""The ``kiln`` command end to end: the real executable, a workspace in the test's folder, the
hello pipeline from ``examples/``; and every bad input as one clear message with no traceback.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import KILN, assert_clean_error, kiln
from kiln._version import __version__
from kiln.workspace import Workspace

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello_pipeline.py"
# per-species counts of the penguins with every measurement (palmerpenguins' CSV)
SPECIES = {"Adelie": 151, "Chinstrap": 68, "Gentoo": 123}


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


def run_id_of(stdout: str) -> str:
    found = re.search(r"^complete (\S+): ", stdout, re.MULTILINE)
    assert found, stdout
    return found.group(1)


def artifact_ids(stdout: str) -> dict[str, int]:
    """{step: artifact id} from the table `kiln run` prints at the end."""
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+output\s+\w+ #(\d+)", stdout, re.M)}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------- basics


def test_version() -> None:
    assert ok(kiln("--version")).strip() == f"kiln {__version__}"


def test_help_lists_the_commands() -> None:
    out = ok(kiln("--help"))
    for command in ("init", "run", "runs", "artifacts", "lineage"):
        assert re.search(rf"^\s+{command}\b", out, re.MULTILINE), out
    assert "Usage: kiln" in out
    run_help = ok(kiln("run", "--help"))
    for option in ("--pipeline", "--param", "--no-cache", "--explain-cache", "--workers"):
        assert option in run_help


def test_importing_the_cli_does_not_load_heavy_libraries() -> None:
    probe = (
        "import json, sys, kiln.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'pyarrow', 'polars', 'fsspec') or m == 'rich.progress')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(proc.stdout) == []


def test_init_creates_a_workspace_once(tmp_path: Path) -> None:
    out = ok(kiln("init", cwd=tmp_path))
    assert f"Initialised a Kiln workspace in {tmp_path}" in out
    assert (tmp_path / "kiln.toml").is_file()
    assert (tmp_path / ".kiln" / "metadata.db").is_file()
    config = (tmp_path / "kiln.toml").read_text()
    again = ok(kiln("init", cwd=tmp_path))
    assert "already a Kiln workspace; nothing changed" in again
    assert (tmp_path / "kiln.toml").read_text() == config
    sub = ok(kiln("init", "sub/dir", cwd=tmp_path))
    assert "Initialised" in sub
    assert (tmp_path / "sub" / "dir" / "kiln.toml").is_file()


def test_init_in_an_unwritable_place_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    assert_clean_error(kiln("init", "a-file/ws", cwd=tmp_path), "cannot create a workspace")


# ---------------------------------------------------------------------------- the hello pipeline


@pytest.fixture
def hello_ws(tmp_path: Path) -> Path:
    ok(kiln("init", cwd=tmp_path))
    return tmp_path


@pytest.mark.slow
def test_run_hello_then_inspect_runs_artifacts_and_lineage(hello_ws: Path) -> None:
    first = ok(kiln("run", str(HELLO), cwd=hello_ws))
    assert "complete" in first
    assert "4 ran, 0 from cache" in first
    run_id = run_id_of(first)
    ids = artifact_ids(first)
    assert set(ids) == {"read_penguins", "clean", "summarise", "report"}

    # the report is a real, self-contained page with the per-species counts
    ws = Workspace(hello_ws)
    report = ws.metadata.get_artifact(ids["report"])
    page = (ws.artifacts.path_of(report.uri) / "index.html").read_text()
    assert "<h1>Penguins by species</h1>" in page
    assert "342 rows with every measurement" in page
    for species, n in SPECIES.items():
        assert f"<td>{species}</td><td>{n}<div" in page
    assert "http://" not in page
    assert "https://" not in page
    ws.close()

    # kiln runs: a table with the run
    runs = ok(kiln("runs", cwd=hello_ws))
    assert run_id in runs
    assert "hello" in runs
    assert "COMPLETE" in runs
    assert "4 complete" in runs

    # kiln runs show: parameters, steps and why each ran
    show = ok(kiln("runs", "show", run_id, cwd=hello_ws))
    assert '"group_by": "species"' in show
    for step in ("read_penguins", "clean", "summarise", "report"):
        assert re.search(rf"^{step}\s+{step}\s+COMPLETE", show, re.MULTILINE), show
    assert "miss: first run of this step" in show
    assert f"kiln run {HELLO}" in show

    # kiln artifacts, all and by type
    arts = ok(kiln("artifacts", cwd=hello_ws))
    for type_name in ("Table", "Metrics", "Report"):
        assert type_name in arts
    tables = ok(kiln("artifacts", "--type", "Table", cwd=hello_ws))
    rows = [line.split()[0] for line in tables.splitlines()[1:] if line.strip()]
    assert sorted(int(r) for r in rows if r.isdigit()) == sorted(
        [ids["read_penguins"], ids["clean"]]
    )
    assert "Metrics" not in tables
    assert "num_rows=342" in tables
    assert "no Model artifacts yet" in ok(kiln("artifacts", "--type", "Model", cwd=hello_ws))

    # kiln lineage: what made the report, and what was made from the raw table
    up = ok(kiln("lineage", str(ids["report"]), "--upstream", cwd=hello_ws))
    assert f"Report #{ids['report']}" in up.splitlines()[0]
    for step in ("report", "summarise", "clean", "read_penguins"):
        assert f"step {step} " in up
    assert f"Table #{ids['read_penguins']}" in up
    default = ok(kiln("lineage", str(ids["report"]), cwd=hello_ws))
    assert default == up
    down = ok(kiln("lineage", str(ids["read_penguins"]), "--downstream", cwd=hello_ws))
    assert "downstream" in down.splitlines()[0]
    for step in ("clean", "summarise", "report"):
        assert f"step {step} " in down
    assert "step read_penguins " not in down
    assert f"Report #{ids['report']}" in down


@pytest.mark.slow
def test_rerun_hits_the_cache_and_explains_why(hello_ws: Path) -> None:
    first = ok(kiln("run", str(HELLO), cwd=hello_ws))
    again = ok(kiln("run", str(HELLO), "--explain-cache", cwd=hello_ws))
    assert "0 ran, 4 from cache" in again
    assert artifact_ids(again) == artifact_ids(first)
    assert again.count("hit: same code, parameters and inputs as execution") == 4

    changed = ok(
        kiln("run", str(HELLO), "--param", "min_body_mass_g=3500", "--explain-cache", cwd=hello_ws)
    )
    assert "3 ran, 1 from cache" in changed
    assert re.search(r"read_penguins\s+hit: same code", changed)
    assert re.search(
        r"clean\s+miss: parameter 'min_body_mass_g' changed \(0.0 -> 3500.0\)", changed
    )
    assert re.search(r"summarise\s+miss: input 'table' changed \(new content upstream\)", changed)

    plain = ok(kiln("run", str(HELLO), cwd=hello_ws))
    assert "0 ran, 4 from cache" in plain
    assert "hit: same code" not in plain  # explanations only when asked

    fresh = ok(kiln("run", str(HELLO), "--no-cache", "--explain-cache", cwd=hello_ws))
    assert "4 ran, 0 from cache" in fresh
    assert fresh.count("miss: --no-cache") == 4
    assert set(artifact_ids(fresh).values()).isdisjoint(artifact_ids(first).values())


def test_run_in_process_with_workers_zero(hello_ws: Path) -> None:
    out = ok(kiln("run", str(HELLO), "--workers", "0", "--param", "group_by=island", cwd=hello_ws))
    assert "4 ran" in out
    ws = Workspace(hello_ws)
    summary = ws.metadata.get_artifact(artifact_ids(out)["summarise"])
    metrics = json.loads((ws.artifacts.path_of(summary.uri) / "metrics.json").read_text())
    ws.close()
    assert metrics["group_by"] == "island"
    assert set(metrics["groups"]) == {"Biscoe", "Dream", "Torgersen"}
    assert sum(g["count"] for g in metrics["groups"].values()) == sum(SPECIES.values())


def test_run_without_a_workspace_creates_one_in_the_current_folder(tmp_path: Path) -> None:
    proc = kiln("run", str(HELLO), cwd=tmp_path)
    ok(proc)
    assert "no workspace found; created one" in proc.stderr
    assert (tmp_path / "kiln.toml").is_file()


def test_choosing_a_pipeline_in_a_file_with_several(tmp_path: Path) -> None:
    path = write(
        tmp_path / "two.py",
        """
        from __future__ import annotations
        from kiln import Metrics, component, pipeline

        @component
        def say(word: str = "hi") -> Metrics:
            return Metrics({"word": word})

        @pipeline(name="one")
        def one(word: str = "one") -> None:
            say(word=word)

        @pipeline(name="other")
        def other(word: str = "other") -> None:
            say(word=word)
        """,
    )
    assert_clean_error(
        kiln("run", str(path), cwd=tmp_path), "defines 2 pipelines (one, other)", "--pipeline NAME"
    )
    assert_clean_error(
        kiln("run", str(path), "--pipeline", "three", cwd=tmp_path),
        "has no pipeline named 'three'",
        "one, other",
    )
    out = ok(kiln("run", str(path), "--pipeline", "other", cwd=tmp_path))
    assert "run other" in out
    assert "1 ran" in out


# ---------------------------------------------------------------------------- bad input


def test_missing_pipeline_file(tmp_path: Path) -> None:
    assert_clean_error(kiln("run", "nope.py", cwd=tmp_path), "nope.py does not exist")


def test_file_that_is_not_a_pipeline(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.py", "x = 1\n")
    assert_clean_error(kiln("run", str(plain), cwd=tmp_path), "defines no pipeline")
    text = write(tmp_path / "notes.txt", "hello\n")
    assert_clean_error(kiln("run", str(text), cwd=tmp_path), "is not a .py file")
    folder = tmp_path / "folder.py"
    folder.mkdir()
    assert_clean_error(kiln("run", str(folder), cwd=tmp_path), "does not exist")


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", "import os\n\nraise RuntimeError('no import')\n")
    assert_clean_error(
        kiln("run", str(broken), cwd=tmp_path),
        f"{broken}:3 failed to import: RuntimeError: no import",
    )
    syntax = write(tmp_path / "syntax.py", "def f(:\n")
    assert_clean_error(kiln("run", str(syntax), cwd=tmp_path), "failed to import: SyntaxError")


BAD_GRAPH = """
from __future__ import annotations
from kiln import Metrics, Table, component, pipeline
import pyarrow as pa

@component
def make() -> Table:
    return Table(pa.table({"x": [1]}))

@component
def measure(table: Table) -> Metrics:
    return Metrics({"n": table.read().num_rows})

@pipeline
def bad() -> None:
    BODY
"""


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (
            "t = make(); m = measure(t.output); t.after(m)",
            ["pipeline 'bad' has a cycle: make -> measure -> make"],
        ),
        (
            "m = measure(make().output); measure(m.output, step_name='again')",
            ["type mismatch on input 'table'", "expects Table", "is Metrics"],
        ),
        ("measure()", ["missing input 'table' (Table) of measure"]),
        ("make(rows=3)", ["make has no input rows"]),
    ],
)
def test_bad_graph_fails_before_anything_runs(
    tmp_path: Path, body: str, needles: list[str]
) -> None:
    ok(kiln("init", cwd=tmp_path))
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(BAD_GRAPH).replace("BODY", body))
    proc = kiln("run", str(path), cwd=tmp_path)
    assert_clean_error(proc, *needles)
    assert proc.stderr.count("error:") == 1
    assert "no runs yet" in ok(kiln("runs", cwd=tmp_path))


def test_unknown_or_malformed_param(hello_ws: Path) -> None:
    assert_clean_error(
        kiln("run", str(HELLO), "--param", "colour=red", cwd=hello_ws),
        "--param colour=red: pipeline 'hello' has no parameter 'colour'",
        "min_body_mass_g (float)",
    )
    assert_clean_error(
        kiln("run", str(HELLO), "--param", "min_body_mass_g=heavy", cwd=hello_ws),
        "parameter 'min_body_mass_g' of pipeline 'hello' is float",
        "'heavy' does not parse",
    )
    assert_clean_error(
        kiln("run", str(HELLO), "--param", "no-equals-sign", cwd=hello_ws), "is not KEY=VALUE"
    )
    assert "no runs yet" in ok(kiln("runs", cwd=hello_ws))


@pytest.mark.slow
def test_locked_metadata_database(hello_ws: Path) -> None:
    first = ok(kiln("run", str(HELLO), cwd=hello_ws))
    db = hello_ws / ".kiln" / "metadata.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        proc = kiln("run", str(HELLO), cwd=hello_ws, env={"KILN_METADATA_BUSY_TIMEOUT": "0.5"})
        assert_clean_error(proc, "is locked by another process", "KILN_METADATA_BUSY_TIMEOUT")
    finally:
        holder.rollback()
        holder.close()
    # nothing lost: the first run is intact and the next run is served from it
    assert run_id_of(first) in ok(kiln("runs", cwd=hello_ws))
    assert "0 ran, 4 from cache" in ok(kiln("run", str(HELLO), cwd=hello_ws))


@pytest.mark.slow
def test_metadata_database_newer_than_this_kiln(hello_ws: Path) -> None:
    first = ok(kiln("run", str(HELLO), cwd=hello_ws))
    db = hello_ws / ".kiln" / "metadata.db"
    with sqlite3.connect(db) as conn:
        (current,) = conn.execute("SELECT version FROM kiln_schema").fetchone()
        conn.execute("UPDATE kiln_schema SET version = ?", (current + 1,))
    conn.close()
    for args in (("runs",), ("run", str(HELLO)), ("artifacts",)):
        assert_clean_error(
            kiln(*args, cwd=hello_ws), f"has schema version {current + 1}", "newer than this Kiln"
        )
    with sqlite3.connect(db) as conn:
        # the newer database was not touched: no downgrade, no new rows
        assert conn.execute("SELECT version FROM kiln_schema").fetchone() == (current + 1,)
        conn.execute("UPDATE kiln_schema SET version = ?", (current,))
    conn.close()
    assert run_id_of(first) in ok(kiln("runs", cwd=hello_ws))


def test_unwritable_artifact_root(hello_ws: Path) -> None:
    blocker = hello_ws / "not-a-folder"
    blocker.write_text("a file where the artifact root should be")
    proc = kiln(
        "run", str(HELLO), cwd=hello_ws, env={"KILN_ARTIFACT_ROOT": str(blocker / "artifacts")}
    )
    assert_clean_error(proc, f"artifact root {blocker / 'artifacts'} is not writable")
    assert blocker.read_text() == "a file where the artifact root should be"
    assert "no runs yet" in ok(kiln("runs", cwd=hello_ws))


def test_unknown_run_and_artifact(hello_ws: Path) -> None:
    assert_clean_error(kiln("runs", "show", "no-such-run", cwd=hello_ws), "no run 'no-such-run'")
    assert_clean_error(kiln("lineage", "9999", cwd=hello_ws), "no artifact with id 9999")
    assert_clean_error(
        kiln("lineage", "1", "--upstream", "--downstream", cwd=hello_ws),
        "choose one of --upstream and --downstream",
    )


@pytest.mark.slow
def test_failing_component_names_the_step_and_resumes(hello_ws: Path) -> None:
    original = HELLO.read_text()
    marker = '    """Count and mean of every measurement per group."""\n'
    assert original.count(marker) == 1
    path = hello_ws / "hello.py"
    path.write_text(
        original.replace(marker, marker + '    raise RuntimeError("summarise is broken")\n')
    )
    proc = kiln("run", "hello.py", "--param", "min_body_mass_g=3000", cwd=hello_ws)
    assert_clean_error(
        proc,
        "step 'summarise' (summarise) failed",
        "RuntimeError: summarise is broken",
        "resume with",
        code=1,
    )
    assert "not run: report" in proc.stderr
    lines = proc.stderr.splitlines()
    command = lines[lines.index("resume with (completed steps come from the cache):") + 1].strip()
    assert command.startswith("kiln run hello.py ")
    assert "--param min_body_mass_g=3000.0" in command

    failed_run = re.search(r"failed in run (\S+)", proc.stderr)
    assert failed_run
    show = ok(kiln("runs", "show", failed_run.group(1), cwd=hello_ws))
    assert re.search(r"^summarise\s+summarise\s+FAILED", show, re.MULTILINE)
    assert re.search(r"^report\s+not run", show, re.MULTILINE)
    assert "summarise is broken" in show
    assert "FAILED" in ok(kiln("runs", cwd=hello_ws))

    path.write_text(original)  # the fix
    argv = shlex.split(command)
    assert argv[0] == "kiln"
    resumed = ok(kiln(*argv[1:], cwd=hello_ws))
    assert "2 ran, 2 from cache" in resumed
    assert re.search(r"↺ read_penguins\s+cached", resumed)
    assert re.search(r"↺ clean\s+cached", resumed)


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the worker")
def test_ctrl_c_stops_the_run_and_its_workers(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    path = write(
        tmp_path / "sleepy.py",
        f"""
        from __future__ import annotations
        import os, time
        from kiln import Metrics, component, pipeline

        @component
        def quick() -> Metrics:
            return Metrics({{"a": 1}})

        @component
        def sleepy(m: Metrics) -> Metrics:
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
            return Metrics(m.read())

        @pipeline
        def sleepy_pipe() -> None:
            sleepy(quick().output)
        """,
    )
    ok(kiln("init", cwd=tmp_path))
    proc = subprocess.Popen(
        [KILN, "run", str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert "Traceback" not in out + err
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
    runs = ok(kiln("runs", cwd=tmp_path))
    assert "FAILED" in runs
    assert "1 complete, 1 failed" in runs
    # nothing lost: the finished step is reused by the next run
    path.write_text(path.read_text().replace("time.sleep(60)", "pass"))
    again = ok(kiln("run", str(path), cwd=tmp_path))
    assert "1 ran, 1 from cache" in again


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.mark.slow
@pytest.mark.postgres
def test_hello_pipeline_on_postgresql_metadata(pg_workspace: Workspace) -> None:
    root = pg_workspace.root
    first = ok(kiln("run", str(HELLO), cwd=root))
    assert "4 ran, 0 from cache" in first
    again = ok(kiln("run", str(HELLO), cwd=root))
    assert "0 ran, 4 from cache" in again
    assert not (root / ".kiln" / "metadata.db").exists()  # the metadata went to PostgreSQL
    runs = ok(kiln("runs", cwd=root))
    assert run_id_of(first) in runs
    assert run_id_of(again) in runs
    report = artifact_ids(first)["report"]
    up = ok(kiln("lineage", str(report), cwd=root))
    assert "step read_penguins " in up
    store = pg_workspace.metadata
    assert store.url.startswith("postgresql")
    assert len(store.get_executions()) == 8
