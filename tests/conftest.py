"""Shared fixtures: isolated workspaces, metadata databases on SQLite and PostgreSQL, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.workspace import Workspace

PG_URL = os.environ.get("KILN_TEST_POSTGRES_URL")
# What `kiln validate --format json` prints for each anomaly: these keys, no others.
ANOMALY_KEYS = {
    "feature",
    "types",
    "short_description",
    "description",
    "severity",
    "value",
    "threshold",
}
KILN = str(Path(sys.executable).parent / "kiln")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's workspace or settings."""
    for var in (
        "KILN_HOME",
        "KILN_METADATA_URL",
        "KILN_ARTIFACT_ROOT",
        "KILN_METADATA_BUSY_TIMEOUT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def _pg_database() -> Iterator[str]:
    import sqlalchemy as sa

    assert PG_URL is not None
    name = f"kiln_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database URL: SQLite, and PostgreSQL when CI provides one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    if not PG_URL:
        pytest.skip("KILN_TEST_POSTGRES_URL is not set (.ci/run starts a throwaway PostgreSQL)")
    yield from _pg_database()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace in the test's temporary folder (the current directory)."""
    ws, _ = Workspace.init(tmp_path)
    yield ws
    ws.close()


@pytest.fixture
def pg_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace whose metadata lives in a fresh PostgreSQL database (skipped without one)."""
    if not PG_URL:
        pytest.skip("KILN_TEST_POSTGRES_URL is not set (.ci/run starts a throwaway PostgreSQL)")
    gen = _pg_database()
    url = next(gen)
    monkeypatch.setenv("KILN_METADATA_URL", url)
    ws, _ = Workspace.init(tmp_path)
    yield ws
    ws.close()
    next(gen, None)


@pytest.fixture
def penguins(tmp_path: Path) -> Path:
    """A copy of the Palmer penguins CSV (344 rows, shipped in the palmerpenguins package)."""
    import importlib.resources
    import shutil

    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    dest = tmp_path / "penguins.csv"
    with src.open("rb") as f, dest.open("wb") as out:
        shutil.copyfileobj(f, out)
    return dest


def kiln(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``kiln`` command; returns its exit code and output."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [KILN, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clean_error(
    proc: subprocess.CompletedProcess[str], *needles: str, code: int = 2
) -> None:
    """One clear message, the expected non-zero exit code, and no traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}:\n{out}"
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out}"
