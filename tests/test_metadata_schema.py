"""The metadata database's schema version, migrations, a database too new for this Kiln, a
database locked by another process, and what the CLI says about them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import assert_clean_error, kiln
from kiln.errors import MetadataError, MetadataLockedError, SchemaTooNewError
from kiln.metadata import SCHEMA_VERSION, Artifact, ArtifactState, MetadataStore, TypeKind
from kiln.metadata._schema import MIGRATIONS
from kiln.workspace import Workspace


@pytest.fixture
def engine(metadata_url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the test database, for raw SQL behind the store's back."""
    e = sa.create_engine(metadata_url)
    yield e
    e.dispose()


def version_rows(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version FROM kiln_schema")).scalars())


def set_version(engine: sa.Engine, version: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE kiln_schema SET version = :v"), {"v": version})


def columns(engine: sa.Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def seed(url: str) -> int:
    """A v1 database holding one artifact; returns its id."""
    with MetadataStore(url) as store:
        store.put_artifact_type("Dataset", {"rows": "INT"})
        [a] = store.put_artifacts(
            [Artifact("Dataset", "d/1", ArtifactState.LIVE, properties={"rows": 7})]
        )
    assert a.id is not None
    return a.id


NEXT = SCHEMA_VERSION + 1  # the version a test migration brings a current database to


def add_note_column(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE artifacts ADD COLUMN note TEXT"))


# ---------------------------------------------------------------------------------- versions


def test_a_fresh_database_records_the_schema_version(metadata_url: str, engine: sa.Engine) -> None:
    with MetadataStore(metadata_url) as store:
        assert store.schema_version == SCHEMA_VERSION == max(MIGRATIONS)
    assert version_rows(engine) == [SCHEMA_VERSION]
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"kiln_schema", "types", "artifacts", "executions", "contexts", "events"} <= tables


def test_reopening_keeps_data_and_version(metadata_url: str, engine: sa.Engine) -> None:
    artifact_id = seed(metadata_url)
    for _ in range(2):
        with MetadataStore(metadata_url) as store:
            assert store.get_artifact(artifact_id).properties == {"rows": 7}
    assert version_rows(engine) == [SCHEMA_VERSION]


def test_a_database_newer_than_kiln_is_refused(metadata_url: str, engine: sa.Engine) -> None:
    artifact_id = seed(metadata_url)
    too_new = SCHEMA_VERSION + 5
    set_version(engine, too_new)
    with pytest.raises(SchemaTooNewError) as info:
        MetadataStore(metadata_url)
    assert isinstance(info.value, MetadataError)
    msg = str(info.value)
    assert f"schema version {too_new}" in msg
    assert f"up to {SCHEMA_VERSION}" in msg
    assert "Upgrade Kiln" in msg
    assert "KILN_METADATA_URL" in msg
    assert sa.make_url(metadata_url).database in msg  # which database
    # refused without touching it
    assert version_rows(engine) == [too_new]
    set_version(engine, SCHEMA_VERSION)
    with MetadataStore(metadata_url) as store:
        assert store.get_artifact(artifact_id).uri == "d/1"


def test_a_password_in_the_url_never_shows_in_a_message() -> None:
    url = "postgresql+psycopg://kiln:s3cret-pw@127.0.0.1:1/nowhere"  # port 1: refused at once
    with pytest.raises(MetadataError) as info:
        MetadataStore(url, busy_timeout=1)
    assert "s3cret-pw" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u@h/db", "supports sqlite:// and postgresql://"),
    ],
)
def test_an_unusable_url_is_a_clear_error(url: str, needle: str) -> None:
    with pytest.raises(MetadataError, match=needle):
        MetadataStore(url)


# -------------------------------------------------------------------------------- migrations


def test_a_migration_upgrades_a_v1_database_and_keeps_its_data(
    metadata_url: str, engine: sa.Engine
) -> None:
    artifact_id = seed(metadata_url)
    assert "note" not in columns(engine, "artifacts")
    runs: list[int] = []

    def v2(conn: sa.Connection) -> None:
        runs.append(1)
        add_note_column(conn)
        conn.execute(sa.text("UPDATE artifacts SET note = 'migrated'"))

    with MetadataStore(metadata_url, migrations={**MIGRATIONS, NEXT: v2}) as store:
        assert store.schema_version == NEXT
        got = store.get_artifact(artifact_id)
        assert (got.uri, got.state, got.properties) == ("d/1", ArtifactState.LIVE, {"rows": 7})
        [new] = store.put_artifacts([Artifact("Dataset", "d/2", properties={"rows": 1})])
    assert runs == [1]
    assert version_rows(engine) == [NEXT]
    assert "note" in columns(engine, "artifacts")
    with engine.connect() as conn:
        notes = {r[0]: r[1] for r in conn.execute(sa.text("SELECT id, note FROM artifacts"))}
    assert notes == {artifact_id: "migrated", new.id: None}

    # opening again runs nothing more
    with MetadataStore(metadata_url, migrations={**MIGRATIONS, NEXT: v2}) as store:
        assert store.get_artifact(artifact_id).properties == {"rows": 7}
    assert runs == [1]
    # and this Kiln, which knows only SCHEMA_VERSION, now refuses the database
    with pytest.raises(SchemaTooNewError, match=f"schema version {NEXT}"):
        MetadataStore(metadata_url)


def test_a_fresh_database_goes_through_every_migration(
    metadata_url: str, engine: sa.Engine
) -> None:
    with MetadataStore(metadata_url, migrations={**MIGRATIONS, NEXT: add_note_column}) as store:
        assert store.schema_version == NEXT
    assert version_rows(engine) == [NEXT]
    assert "note" in columns(engine, "artifacts")


def test_a_failed_migration_changes_nothing(metadata_url: str, engine: sa.Engine) -> None:
    artifact_id = seed(metadata_url)

    def broken(conn: sa.Connection) -> None:
        add_note_column(conn)
        conn.execute(sa.text("UPDATE no_such_table SET x = 1"))

    with pytest.raises(MetadataError, match="no_such_table"):
        MetadataStore(metadata_url, migrations={**MIGRATIONS, NEXT: broken})
    # the column added before the failure was rolled back with the rest
    assert version_rows(engine) == [SCHEMA_VERSION]
    assert "note" not in columns(engine, "artifacts")
    with MetadataStore(metadata_url, migrations={**MIGRATIONS, NEXT: add_note_column}) as store:
        assert store.get_artifact(artifact_id).properties == {"rows": 7}
    assert version_rows(engine) == [NEXT]


# -------------------------------------------------------------------------------------- locks


def test_a_locked_sqlite_database_fails_writes_clearly_and_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    url = f"sqlite:///{path}"
    artifact_id = seed(url)
    store = MetadataStore(url, busy_timeout=0.3)
    store.put_artifact_type("Dataset")  # types known before the lock: the write below is an insert
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute(
            "INSERT INTO types (kind, name, version, description) VALUES "
            "('ARTIFACT', 'Held', '', '')"
        )
        start = time.monotonic()
        with pytest.raises(MetadataLockedError) as info:
            store.put_artifacts([Artifact("Dataset", "d/2")])
        waited = time.monotonic() - start
        msg = str(info.value)
        assert "KILN_METADATA_BUSY_TIMEOUT" in msg
        assert str(path) in msg
        assert "0.3 s" in msg
        assert 0.25 <= waited < 10
        # WAL: readers do not wait for the writer, on an open store or a newly opened one
        assert store.get_artifact(artifact_id).uri == "d/1"
        with MetadataStore(url, busy_timeout=0.3) as reader:
            assert [a.id for a in reader.get_artifacts()] == [artifact_id]
            # what the holder wrote and has not committed is not visible
            assert [t.name for t in reader.get_types(TypeKind.ARTIFACT)] == ["Dataset"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # once the lock is gone, the same store writes again
    store.put_artifacts([Artifact("Dataset", "d/2")])
    assert sorted(a.uri for a in store.get_artifacts()) == ["d/1", "d/2"]
    store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("metadata_url", ["postgres"], indirect=True)
def test_a_locked_postgres_table_fails_writes_clearly_and_still_reads(
    metadata_url: str, engine: sa.Engine
) -> None:
    artifact_id = seed(metadata_url)
    store = MetadataStore(metadata_url, busy_timeout=0.3)
    store.put_artifact_type("Dataset")
    with engine.connect() as holder:
        holder.execute(sa.text("LOCK TABLE artifacts IN EXCLUSIVE MODE"))  # reads still allowed
        start = time.monotonic()
        with pytest.raises(MetadataLockedError, match="KILN_METADATA_BUSY_TIMEOUT"):
            store.put_artifacts([Artifact("Dataset", "d/2")])
        assert time.monotonic() - start < 10
        assert store.get_artifact(artifact_id).uri == "d/1"
        with MetadataStore(metadata_url, busy_timeout=0.3) as reader:
            assert [a.id for a in reader.get_artifacts()] == [artifact_id]
        holder.rollback()
    store.put_artifacts([Artifact("Dataset", "d/2")])
    assert len(store.get_artifacts()) == 2
    store.close()


# ----------------------------------------------------------------------------------------- CLI


def _make_too_new(ws: Workspace) -> str:
    url = ws.settings.metadata_url
    seed(url)
    e = sa.create_engine(url)
    try:
        set_version(e, SCHEMA_VERSION + 1)
    finally:
        e.dispose()
    return url


def test_cli_says_the_database_is_too_new(workspace: Workspace, tmp_path: Path) -> None:
    _make_too_new(workspace)
    proc = kiln("runs", cwd=tmp_path)
    assert_clean_error(proc, f"schema version {SCHEMA_VERSION + 1}", "Upgrade Kiln")
    assert proc.stdout == ""
    assert proc.stderr.count("error:") == 1


def test_cli_says_the_database_is_too_new_via_kiln_metadata_url(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "meta.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    seed(url)
    e = sa.create_engine(url)
    set_version(e, SCHEMA_VERSION + 1)
    e.dispose()
    proc = kiln("runs", cwd=tmp_path, env={"KILN_METADATA_URL": url})
    assert_clean_error(proc, f"schema version {SCHEMA_VERSION + 1}", "Upgrade Kiln", str(db))


def test_cli_says_the_postgres_database_is_too_new(pg_workspace: Workspace, tmp_path: Path) -> None:
    _make_too_new(pg_workspace)
    proc = kiln("runs", cwd=tmp_path)
    assert_clean_error(proc, f"schema version {SCHEMA_VERSION + 1}", "Upgrade Kiln")
    assert proc.stderr.count("error:") == 1


def test_cli_reads_while_another_process_holds_the_write_lock(
    workspace: Workspace, tmp_path: Path
) -> None:
    url = workspace.settings.metadata_url
    seed(url)
    path = sa.make_url(url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute(
            "INSERT INTO types (kind, name, version, description) VALUES "
            "('ARTIFACT', 'Held', '', '')"
        )
        proc = kiln("runs", cwd=tmp_path, env={"KILN_METADATA_BUSY_TIMEOUT": "0.3"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no runs yet" in proc.stdout
