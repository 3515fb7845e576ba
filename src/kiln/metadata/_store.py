"""The metadata store: MLMD's data model in one SQL database (SQLite by default, PostgreSQL too).

Every write runs in one transaction. On SQLite, write transactions start with ``BEGIN IMMEDIATE``
so that two processes queue on the database's lock (up to the busy timeout) instead of failing
when a read transaction tries to become a write one; the database runs in WAL mode so readers
never wait for writers. On PostgreSQL, row-level conflicts (two runs attributing the same
cached artifact to the same pipeline) are absorbed with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from kiln._version import __version__
from kiln.errors import (
    MetadataError,
    MetadataLockedError,
    NotFoundError,
    SchemaTooNewError,
)
from kiln.metadata._model import (
    Artifact,
    ArtifactState,
    ArtifactType,
    Context,
    ContextType,
    Event,
    EventType,
    Execution,
    ExecutionState,
    ExecutionType,
    PropertyType,
    PropertyValue,
    TypeKind,
    _TypeBase,
)
from kiln.metadata._schema import MIGRATIONS, Migration, tables

__all__ = ["MetadataStore", "now_ms"]

T_obj = TypeVar("T_obj", Artifact, Execution, Context)
_TYPE_CLASSES: dict[TypeKind, type[_TypeBase]] = {
    TypeKind.ARTIFACT: ArtifactType,
    TypeKind.EXECUTION: ExecutionType,
    TypeKind.CONTEXT: ContextType,
}


def now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def _undo_ids_on_failure(objects: Iterable[Artifact | Execution | Context]) -> Iterator[None]:
    """Give objects back the ids and times they had when the transaction writing them fails.

    An id from a rolled-back insert names no row, or (SQLite reuses ids) a later one of someone
    else's: a retry with it would fail, or update the wrong row.
    """
    saved = [(o, o.id, o.create_time_ms, o.update_time_ms) for o in objects]
    try:
        yield
    except BaseException:
        for o, id_, created, updated in saved:
            o.id, o.create_time_ms, o.update_time_ms = id_, created, updated
        raise


def _set_wal(cur: sqlite3.Cursor, busy_timeout: float) -> None:
    """Switch a SQLite database to WAL mode, waiting up to the busy timeout for other processes.

    Changing the journal mode needs an exclusive lock and fails at once, without the busy handler,
    while another connection (one opening the same new database) holds a lock: retry it.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class MetadataStore:
    """Artifacts, executions and contexts, their types and properties, and the edges between them.

    >>> store = MetadataStore("sqlite://")  # in memory
    >>> _ = store.put_artifact_type("Table", {"rows": PropertyType.INT})
    >>> a = store.put_artifacts([Artifact("Table", "Table/1", properties={"rows": 3})])[0]
    >>> store.get_artifact(a.id).properties
    {'rows': 3}
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        migrations: Mapping[int, Migration] | None = None,
    ) -> None:
        self.url = url
        self.display_url = _redact(url)
        self.busy_timeout = busy_timeout
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as e:
            raise MetadataError(
                f"metadata_url {url!r} is not a database URL: use sqlite:///path/to/metadata.db "
                "or postgresql+psycopg://user@host/db"
            ) from e
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._engine = self._make_engine(parsed)
        self._types: dict[tuple[TypeKind, str], _TypeBase] = {}
        self._migrations = dict(MIGRATIONS if migrations is None else migrations)
        self.schema_version = max(self._migrations)
        try:
            self._ensure_schema()
        except BaseException:
            self._engine.dispose()  # no half-open store: its connections would leak
            raise

    # ------------------------------------------------------------------ connection and schema

    def _make_engine(self, parsed: sa.URL) -> sa.Engine:
        timeout_ms = int(self.busy_timeout * 1000)
        if self._sqlite:
            in_memory = parsed.database in (None, "", ":memory:")
            engine = sa.create_engine(
                parsed,
                connect_args={"timeout": self.busy_timeout},
                poolclass=sa.pool.StaticPool if in_memory else sa.pool.QueuePool,
            )

            @sa.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # transactions are begun below, not by sqlite3
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                if not in_memory:
                    _set_wal(cur, self.busy_timeout)
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _on_begin(conn: sa.Connection) -> None:
                write = conn.get_execution_options().get("kiln_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        if parsed.get_backend_name() == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            try:
                return sa.create_engine(
                    parsed,
                    pool_pre_ping=True,
                    connect_args={
                        "options": f"-c lock_timeout={timeout_ms}",
                        "connect_timeout": max(1, int(self.busy_timeout)),
                    },
                )
            except ModuleNotFoundError as e:
                raise MetadataError(
                    f"metadata_url {self.display_url} needs the PostgreSQL driver: "
                    "pip install 'kiln[postgres]'"
                ) from e
        raise MetadataError(
            f"metadata_url {self.display_url}: Kiln supports sqlite:// and postgresql:// URLs"
        )

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[sa.Connection]:
        """One transaction; engine errors become a :class:`MetadataError` naming the database."""
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(kiln_write=True)
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as e:
            text = str(e.orig).lower()
            if "locked" in text or "lock timeout" in text or "busy" in text:
                raise MetadataLockedError(
                    f"metadata database {self.display_url} is locked by another process "
                    f"(waited {self.busy_timeout:g} s). Wait for that process to finish, or raise "
                    "the wait with KILN_METADATA_BUSY_TIMEOUT=SECONDS."
                ) from e
            raise MetadataError(f"metadata database {self.display_url}: {e.orig}") from e
        except sa.exc.DBAPIError as e:
            raise MetadataError(f"metadata database {self.display_url}: {e.orig}") from e

    @staticmethod
    def _read_version(conn: sa.Connection) -> int | None:
        """The database's schema version; None when it has no version table yet."""
        if not sa.inspect(conn).has_table(tables.schema_version.name):
            return None
        return int(conn.execute(sa.select(tables.schema_version.c.version)).scalar() or 0)

    def _check_not_too_new(self, current: int) -> None:
        if current > self.schema_version:
            raise SchemaTooNewError(
                f"metadata database {self.display_url} has schema version {current}, newer "
                f"than this Kiln ({__version__}) understands (up to {self.schema_version}). "
                "Upgrade Kiln (pip install -U kiln), or point KILN_METADATA_URL at another "
                "database."
            )

    def _ensure_schema(self) -> None:
        # A database already at this version needs no write lock: opening one to read it must not
        # wait for (or fail because of) another process's write transaction.
        with self._tx(write=False) as conn:
            found = self._read_version(conn)
        if found is not None:
            self._check_not_too_new(found)
            if found == self.schema_version:
                return
        with self._tx(write=True) as conn:
            if conn.dialect.name == "postgresql":
                # Serialise concurrent first opens; released when the transaction ends.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7458329110)"))
            current = self._read_version(conn)
            if current is None:
                tables.schema_version.create(conn)
                current = 0
            self._check_not_too_new(current)
            for version in range(current + 1, self.schema_version + 1):
                self._migrations[version](conn)
            if current == 0:
                conn.execute(
                    tables.schema_version.insert().values(id=1, version=self.schema_version)
                )
            elif current < self.schema_version:
                conn.execute(tables.schema_version.update().values(version=self.schema_version))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self, *, write: bool = False) -> AbstractContextManager[sa.Connection]:
        """One transaction on the database, for a module that keeps its own tables in it (the
        model registry's, created by this store's migrations).

        ``write=True`` takes the write lock at the start on SQLite (``BEGIN IMMEDIATE``), so a
        read-then-write inside it is atomic against other processes; on PostgreSQL lock the rows
        to change with ``SELECT … FOR UPDATE``. Engine errors come out as :class:`MetadataError`.
        """
        return self._tx(write=write)

    # ------------------------------------------------------------------ helpers

    def _insert_ignore(
        self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        stmt: sa.Executable
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table).on_conflict_do_nothing()
        conn.execute(stmt, rows)

    # ------------------------------------------------------------------ types

    def _put_type(
        self,
        kind: TypeKind,
        name: str,
        properties: Mapping[str, PropertyType | str] | None,
        version: str,
        description: str,
    ) -> _TypeBase:
        try:
            props = {k: PropertyType(v) for k, v in (properties or {}).items()}
        except ValueError as e:
            raise MetadataError(
                f"{kind.value.lower()} type {name!r}: {e}; property types are "
                f"{', '.join(PropertyType)}"
            ) from e
        t = tables.types
        known = self._types.get((kind, name))
        if known is None:
            try:
                known = self._get_type(kind, name)
            except NotFoundError:
                known = None
        if (
            known is not None
            and all(known.properties.get(k) == v for k, v in props.items())
            and (not version or version == known.version)
            and (not description or description == known.description)
        ):
            return known  # registered already, nothing new: no write transaction
        with self._tx(write=True) as conn:
            self._insert_ignore(
                conn,
                t,
                [
                    {
                        "kind": kind.value,
                        "name": name,
                        "version": version,
                        "description": description,
                    }
                ],
            )
            row = conn.execute(
                sa.select(t.c.id, t.c.version, t.c.description).where(
                    t.c.kind == kind.value, t.c.name == name
                )
            ).one()
            if (version, description) != (row.version, row.description) and (
                version or description
            ):
                conn.execute(
                    t.update()
                    .where(t.c.id == row.id)
                    .values(
                        version=version or row.version, description=description or row.description
                    )
                )
            existing = self._type_properties(conn, row.id)
            for pname, ptype in props.items():
                if pname in existing and existing[pname] != ptype:
                    raise MetadataError(
                        f"{kind.value.lower()} type {name!r}: property {pname!r} is "
                        f"{existing[pname].value} in {self.display_url}, {ptype.value} here. "
                        "Rename the property or the type."
                    )
            self._insert_ignore(
                conn,
                tables.type_properties,
                [
                    {"type_id": row.id, "name": k, "data_type": v.value}
                    for k, v in props.items()
                    if k not in existing
                ],
            )
            merged = {**existing, **props}
        cls = _TYPE_CLASSES[kind]
        result = cls(
            name=name,
            properties=merged,
            version=version or row.version,
            description=description or row.description,
            id=row.id,
        )
        self._types[(kind, name)] = result
        return result

    @staticmethod
    def _type_properties(conn: sa.Connection, type_id: int) -> dict[str, PropertyType]:
        tp = tables.type_properties
        rows = conn.execute(sa.select(tp.c.name, tp.c.data_type).where(tp.c.type_id == type_id))
        return {r.name: PropertyType(r.data_type) for r in rows}

    def put_artifact_type(
        self,
        name: str,
        properties: Mapping[str, PropertyType | str] | None = None,
        *,
        version: str = "",
        description: str = "",
    ) -> ArtifactType:
        """Register an artifact type (idempotent; new properties added, changed ones refused)."""
        t = self._put_type(TypeKind.ARTIFACT, name, properties, version, description)
        assert isinstance(t, ArtifactType)
        return t

    def put_execution_type(
        self,
        name: str,
        properties: Mapping[str, PropertyType | str] | None = None,
        *,
        version: str = "",
        description: str = "",
    ) -> ExecutionType:
        t = self._put_type(TypeKind.EXECUTION, name, properties, version, description)
        assert isinstance(t, ExecutionType)
        return t

    def put_context_type(
        self,
        name: str,
        properties: Mapping[str, PropertyType | str] | None = None,
        *,
        version: str = "",
        description: str = "",
    ) -> ContextType:
        t = self._put_type(TypeKind.CONTEXT, name, properties, version, description)
        assert isinstance(t, ContextType)
        return t

    def _get_type(self, kind: TypeKind, name: str, conn: sa.Connection | None = None) -> _TypeBase:
        cached = self._types.get((kind, name))
        if cached is not None:
            return cached
        t = tables.types

        def load(c: sa.Connection) -> _TypeBase:
            row = c.execute(
                sa.select(t).where(t.c.kind == kind.value, t.c.name == name)
            ).one_or_none()
            if row is None:
                raise NotFoundError(
                    f"{kind.value.lower()} type {name!r} is not registered in "
                    f"{self.display_url}; register it with put_{kind.value.lower()}_type first"
                )
            return _TYPE_CLASSES[kind](
                name=name,
                properties=self._type_properties(c, row.id),
                version=row.version,
                description=row.description,
                id=row.id,
            )

        if conn is not None:
            result = load(conn)
        else:
            with self._tx(write=False) as c:
                result = load(c)
        self._types[(kind, name)] = result
        return result

    def get_artifact_type(self, name: str) -> ArtifactType:
        t = self._get_type(TypeKind.ARTIFACT, name)
        assert isinstance(t, ArtifactType)
        return t

    def get_execution_type(self, name: str) -> ExecutionType:
        t = self._get_type(TypeKind.EXECUTION, name)
        assert isinstance(t, ExecutionType)
        return t

    def get_context_type(self, name: str) -> ContextType:
        t = self._get_type(TypeKind.CONTEXT, name)
        assert isinstance(t, ContextType)
        return t

    def get_types(self, kind: TypeKind) -> list[_TypeBase]:
        t = tables.types
        with self._tx(write=False) as conn:
            names = conn.execute(
                sa.select(t.c.name).where(t.c.kind == kind.value).order_by(t.c.name)
            ).scalars()
            return [self._get_type(kind, n, conn) for n in list(names)]

    def _type_names(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, str]:
        t = tables.types
        wanted = set(ids)
        known = {
            tb.id: tb.name for tb in self._types.values() if tb.id is not None and tb.id in wanted
        }
        missing = wanted - set(known)
        if missing:
            rows = conn.execute(sa.select(t.c.id, t.c.name).where(t.c.id.in_(missing)))
            known.update({r.id: r.name for r in rows})
        return known

    # ------------------------------------------------------------------ properties

    @staticmethod
    def _encode(
        owner: str, type_name: str, name: str, value: PropertyValue, declared: PropertyType | None
    ) -> dict[str, Any]:
        where = f"{owner} property {name!r} of type {type_name!r}"
        if isinstance(value, bool):
            vt = PropertyType.BOOL
        elif isinstance(value, int):
            vt = PropertyType.INT
        elif isinstance(value, float):
            vt = PropertyType.DOUBLE
        elif isinstance(value, str):
            vt = PropertyType.STRING
        else:
            vt = PropertyType.JSON
        if declared is not None and declared != vt:
            if declared == PropertyType.DOUBLE and vt == PropertyType.INT:
                vt, value = PropertyType.DOUBLE, float(value)  # type: ignore[arg-type]
            elif declared == PropertyType.JSON:
                vt = PropertyType.JSON
            else:
                raise MetadataError(
                    f"{where} is declared {declared.value}, got {type(value).__name__} {value!r}"
                )
        if vt == PropertyType.INT and not -(2**63) <= value < 2**63:  # type: ignore[operator]
            raise MetadataError(
                f"{where} is {value}, outside the 64-bit range of an INT; store it as a string"
            )
        row: dict[str, Any] = {"value_type": vt.value}
        row["int_value"] = int(value) if vt in (PropertyType.INT, PropertyType.BOOL) else None  # type: ignore[arg-type]
        row["double_value"] = None
        row["string_value"] = None
        if vt == PropertyType.DOUBLE:
            assert isinstance(value, float)
            if math.isnan(value) or math.isinf(value):
                vt = PropertyType.JSON  # keep NaN/inf exactly, as text
                row["value_type"] = vt.value
                row["string_value"] = json.dumps(value)
            else:
                row["double_value"] = value
        elif vt == PropertyType.STRING:
            row["string_value"] = value
        elif vt == PropertyType.JSON:
            try:
                row["string_value"] = json.dumps(value, sort_keys=True)
            except (TypeError, ValueError) as e:
                raise MetadataError(f"{where} is not JSON-serialisable: {e}") from e
        return row

    @staticmethod
    def _decode(row: Any) -> PropertyValue:
        vt = PropertyType(row.value_type)
        if vt == PropertyType.INT:
            return int(row.int_value)
        if vt == PropertyType.BOOL:
            return bool(row.int_value)
        if vt == PropertyType.DOUBLE:
            return float(row.double_value)
        if vt == PropertyType.STRING:
            return str(row.string_value)
        value: PropertyValue = json.loads(row.string_value)
        return value

    def _write_properties(
        self,
        conn: sa.Connection,
        owner: str,
        owner_id: int,
        kind: TypeKind,
        type_name: str,
        properties: Mapping[str, PropertyValue],
        custom: Mapping[str, PropertyValue],
    ) -> None:
        table = tables.properties[owner]
        declared = self._get_type(kind, type_name, conn).properties
        rows = []
        for name, value in properties.items():
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise MetadataError(
                    f"{owner} type {type_name!r} declares no property {name!r} "
                    f"(declared: {known}); put free-form values in custom_properties"
                )
            if value is not None:
                enc = self._encode(owner, type_name, name, value, declared[name])
                rows.append({f"{owner}_id": owner_id, "name": name, "is_custom": False, **enc})
        for name, value in custom.items():
            if value is not None:
                enc = self._encode(owner, type_name, name, value, None)
                rows.append({f"{owner}_id": owner_id, "name": name, "is_custom": True, **enc})
        conn.execute(table.delete().where(table.c[f"{owner}_id"] == owner_id))
        if rows:
            conn.execute(table.insert(), rows)

    def _read_properties(
        self, conn: sa.Connection, owner: str, ids: Sequence[int]
    ) -> dict[int, tuple[dict[str, PropertyValue], dict[str, PropertyValue]]]:
        table = tables.properties[owner]
        out: dict[int, tuple[dict[str, PropertyValue], dict[str, PropertyValue]]] = {
            i: ({}, {}) for i in ids
        }
        col = table.c[f"{owner}_id"]
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for row in conn.execute(sa.select(table).where(col.in_(chunk))):
                props, custom = out[getattr(row, f"{owner}_id")]
                (custom if row.is_custom else props)[row.name] = self._decode(row)
        return out

    # ------------------------------------------------------------------ artifacts

    def _upsert(
        self,
        conn: sa.Connection,
        owner: str,
        kind: TypeKind,
        obj: Artifact | Execution,
        **cols: Any,
    ) -> None:
        """Insert ``obj`` (no id yet) or update its row, then replace its properties."""
        t = tables.artifacts if owner == "artifact" else tables.executions
        now = now_ms()
        values = {"type_id": self._get_type(kind, obj.type_name, conn).id, **cols}
        values["update_time_ms"] = now
        if obj.id is None:
            obj.create_time_ms = now
            obj.id = conn.execute(
                t.insert().values(create_time_ms=now, **values).returning(t.c.id)
            ).scalar_one()
        elif conn.execute(t.update().where(t.c.id == obj.id).values(**values)).rowcount != 1:
            raise NotFoundError(f"{owner} {obj.id} does not exist in {self.display_url}")
        obj.update_time_ms = now
        self._write_properties(
            conn, owner, obj.id, kind, obj.type_name, obj.properties, obj.custom_properties
        )

    def _put_artifact(self, conn: sa.Connection, a: Artifact) -> Artifact:
        self._upsert(
            conn,
            "artifact",
            TypeKind.ARTIFACT,
            a,
            uri=a.uri,
            state=ArtifactState(a.state).value,
            name=a.name,
            fingerprint=a.fingerprint,
        )
        return a

    @staticmethod
    def _of_type(column: Any, kind: TypeKind, type_name: str) -> Any:
        """``column`` (a type_id) is the type ``type_name`` of this kind."""
        tt = tables.types
        return column.in_(sa.select(tt.c.id).where(tt.c.kind == kind.value, tt.c.name == type_name))

    def _load(
        self,
        conn: sa.Connection,
        owner: str,
        where: Any,
        limit: int | None,
        newest_first: bool,
        make: Callable[[Any, str, dict[str, PropertyValue], dict[str, PropertyValue]], T_obj],
    ) -> list[T_obj]:
        """Rows of one table with their type names and properties, built by ``make``."""
        t = {"artifact": tables.artifacts, "execution": tables.executions}.get(
            owner, tables.contexts
        )
        q = sa.select(t).where(where).order_by(t.c.id.desc() if newest_first else t.c.id)
        if limit is not None:
            q = q.limit(limit)
        rows = list(conn.execute(q))
        names = self._type_names(conn, {r.type_id for r in rows})
        props = self._read_properties(conn, owner, [r.id for r in rows])
        return [make(r, names[r.type_id], *props[r.id]) for r in rows]

    def put_artifacts(self, artifacts: Sequence[Artifact]) -> list[Artifact]:
        """Insert new artifacts (``id is None``) or update existing ones; returns them with ids."""
        with _undo_ids_on_failure(artifacts), self._tx(write=True) as conn:
            return [self._put_artifact(conn, a) for a in artifacts]

    def _load_artifacts(
        self, conn: sa.Connection, where: Any, limit: int | None = None
    ) -> list[Artifact]:
        return self._load(
            conn,
            "artifact",
            where,
            limit,
            True,
            lambda r, type_name, props, custom: Artifact(
                type_name=type_name,
                uri=r.uri,
                state=ArtifactState(r.state),
                name=r.name,
                fingerprint=r.fingerprint,
                properties=props,
                custom_properties=custom,
                id=r.id,
                create_time_ms=r.create_time_ms,
                update_time_ms=r.update_time_ms,
            ),
        )

    def get_artifact_uris(self, states: Iterable[ArtifactState]) -> set[str]:
        """The URIs of every artifact in one of ``states`` (cheap: no properties are read)."""
        t = tables.artifacts
        wanted = [ArtifactState(s).value for s in states]
        with self._tx(write=False) as conn:
            return set(conn.execute(sa.select(t.c.uri).where(t.c.state.in_(wanted))).scalars())

    def get_artifact(self, artifact_id: int) -> Artifact:
        found = self.get_artifacts(ids=[artifact_id])
        if not found:
            raise NotFoundError(
                f"no artifact with id {artifact_id} in {self.display_url}; "
                "`kiln artifacts` lists them"
            )
        return found[0]

    def get_artifacts(
        self,
        *,
        ids: Sequence[int] | None = None,
        type_name: str | None = None,
        state: ArtifactState | None = None,
        context_id: int | None = None,
        limit: int | None = None,
    ) -> list[Artifact]:
        """Artifacts, newest first, filtered by any combination of the arguments."""
        t = tables.artifacts
        cond: list[Any] = []
        with self._tx(write=False) as conn:
            if ids is not None:
                cond.append(t.c.id.in_(list(ids)))
            if type_name is not None:
                cond.append(self._of_type(t.c.type_id, TypeKind.ARTIFACT, type_name))
            if state is not None:
                cond.append(t.c.state == ArtifactState(state).value)
            if context_id is not None:
                at = tables.attributions
                cond.append(
                    t.c.id.in_(sa.select(at.c.artifact_id).where(at.c.context_id == context_id))
                )
            return self._load_artifacts(conn, sa.and_(sa.true(), *cond), limit)

    # ------------------------------------------------------------------ executions

    def _put_execution_row(self, conn: sa.Connection, e: Execution) -> Execution:
        self._upsert(
            conn,
            "execution",
            TypeKind.EXECUTION,
            e,
            name=e.name,
            state=ExecutionState(e.state).value,
            cache_key=e.cache_key,
        )
        return e

    def put_execution(
        self,
        execution: Execution,
        *,
        inputs: Mapping[str, Sequence[Artifact]] | None = None,
        outputs: Mapping[str, Sequence[Artifact]] | None = None,
        contexts: Sequence[Context] = (),
        update_outputs: bool = True,
    ) -> Execution:
        """Write an execution, its input and output artifacts, their events and contexts at once.

        New artifacts are inserted, existing ones updated (a step publishing its outputs flips
        them from PENDING to LIVE in the same transaction that marks it COMPLETE;
        ``update_outputs=False`` links existing outputs without rewriting them, as a cache hit
        does). Events, attributions
        and associations already present are kept, so calling this again with a new state is safe.
        """
        now = now_ms()
        written: list[Artifact | Execution | Context] = [execution]
        written += [a for g in (inputs, outputs) for arts in (g or {}).values() for a in arts]
        with _undo_ids_on_failure(written), self._tx(write=True) as conn:
            self._put_execution_row(conn, execution)
            assert execution.id is not None
            events: list[dict[str, Any]] = []
            linked: list[Artifact] = []
            for etype, group in ((EventType.INPUT, inputs), (EventType.OUTPUT, outputs)):
                for path, arts in (group or {}).items():
                    for idx, art in enumerate(arts):
                        if art.id is None or (etype == EventType.OUTPUT and update_outputs):
                            self._put_artifact(conn, art)
                        assert art.id is not None
                        linked.append(art)
                        events.append(
                            {
                                "artifact_id": art.id,
                                "execution_id": execution.id,
                                "type": etype.value,
                                "path": path,
                                "idx": idx,
                                "time_ms": now,
                            }
                        )
            ev = tables.events
            have = {
                (r.artifact_id, r.type, r.path, r.idx)
                for r in conn.execute(sa.select(ev).where(ev.c.execution_id == execution.id))
            }
            new_events = [
                e for e in events if (e["artifact_id"], e["type"], e["path"], e["idx"]) not in have
            ]
            if new_events:
                conn.execute(ev.insert(), new_events)
            for ctx in contexts:
                if ctx.id is None:
                    raise MetadataError(f"context {ctx.name!r} must be stored before it is linked")
                self._insert_ignore(
                    conn,
                    tables.associations,
                    [{"context_id": ctx.id, "execution_id": execution.id}],
                )
                self._insert_ignore(
                    conn,
                    tables.attributions,
                    [{"context_id": ctx.id, "artifact_id": a.id} for a in linked],
                )
        return execution

    def _load_executions(
        self, conn: sa.Connection, where: Any, limit: int | None = None, newest_first: bool = True
    ) -> list[Execution]:
        return self._load(
            conn,
            "execution",
            where,
            limit,
            newest_first,
            lambda r, type_name, props, custom: Execution(
                type_name=type_name,
                name=r.name,
                state=ExecutionState(r.state),
                cache_key=r.cache_key,
                properties=props,
                custom_properties=custom,
                id=r.id,
                create_time_ms=r.create_time_ms,
                update_time_ms=r.update_time_ms,
            ),
        )

    def get_execution(self, execution_id: int) -> Execution:
        found = self.get_executions(ids=[execution_id])
        if not found:
            raise NotFoundError(f"no execution with id {execution_id} in {self.display_url}")
        return found[0]

    def get_executions(
        self,
        *,
        ids: Sequence[int] | None = None,
        type_name: str | None = None,
        state: ExecutionState | None = None,
        cache_key: str | None = None,
        context_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[Execution]:
        t = tables.executions
        cond: list[Any] = []
        if ids is not None:
            cond.append(t.c.id.in_(list(ids)))
        if state is not None:
            cond.append(t.c.state == ExecutionState(state).value)
        if cache_key is not None:
            cond.append(t.c.cache_key == cache_key)
        if type_name is not None:
            cond.append(self._of_type(t.c.type_id, TypeKind.EXECUTION, type_name))
        if context_id is not None:
            at = tables.associations
            cond.append(
                t.c.id.in_(sa.select(at.c.execution_id).where(at.c.context_id == context_id))
            )
        with self._tx(write=False) as conn:
            return self._load_executions(conn, sa.and_(sa.true(), *cond), limit, newest_first)

    # ------------------------------------------------------------------ contexts

    def put_context(self, context: Context) -> Context:
        """Insert a context, or update it when one of the same type and name exists."""
        t = tables.contexts
        now = now_ms()
        with _undo_ids_on_failure([context]), self._tx(write=True) as conn:
            type_id = self._get_type(TypeKind.CONTEXT, context.type_name, conn).id
            if context.id is None:
                self._insert_ignore(
                    conn,
                    t,
                    [
                        {
                            "type_id": type_id,
                            "name": context.name,
                            "create_time_ms": now,
                            "update_time_ms": now,
                        }
                    ],
                )
                row = conn.execute(
                    sa.select(t.c.id, t.c.create_time_ms).where(
                        t.c.type_id == type_id, t.c.name == context.name
                    )
                ).one()
                context.id, context.create_time_ms = row.id, row.create_time_ms
            conn.execute(t.update().where(t.c.id == context.id).values(update_time_ms=now))
            context.update_time_ms = now
            self._write_properties(
                conn,
                "context",
                context.id,
                TypeKind.CONTEXT,
                context.type_name,
                context.properties,
                context.custom_properties,
            )
        return context

    def _load_contexts(self, conn: sa.Connection, where: Any, limit: int | None) -> list[Context]:
        return self._load(
            conn,
            "context",
            where,
            limit,
            True,
            lambda r, type_name, props, custom: Context(
                type_name=type_name,
                name=r.name,
                properties=props,
                custom_properties=custom,
                id=r.id,
                create_time_ms=r.create_time_ms,
                update_time_ms=r.update_time_ms,
            ),
        )

    def get_contexts(
        self,
        *,
        type_name: str | None = None,
        name: str | None = None,
        ids: Sequence[int] | None = None,
        execution_id: int | None = None,
        artifact_id: int | None = None,
        limit: int | None = None,
    ) -> list[Context]:
        """Contexts, newest first, filtered by any combination of the arguments."""
        t = tables.contexts
        cond: list[Any] = []
        if type_name is not None:
            cond.append(self._of_type(t.c.type_id, TypeKind.CONTEXT, type_name))
        if name is not None:
            cond.append(t.c.name == name)
        if ids is not None:
            cond.append(t.c.id.in_(list(ids)))
        if execution_id is not None:
            asn = tables.associations
            cond.append(
                t.c.id.in_(sa.select(asn.c.context_id).where(asn.c.execution_id == execution_id))
            )
        if artifact_id is not None:
            att = tables.attributions
            cond.append(
                t.c.id.in_(sa.select(att.c.context_id).where(att.c.artifact_id == artifact_id))
            )
        with self._tx(write=False) as conn:
            return self._load_contexts(conn, sa.and_(sa.true(), *cond), limit)

    def get_context(self, type_name: str, name: str) -> Context:
        found = self.get_contexts(type_name=type_name, name=name)
        if not found:
            raise NotFoundError(f"no {type_name} named {name!r} in {self.display_url}")
        return found[0]

    # ------------------------------------------------------------------ events

    def get_events(
        self,
        *,
        execution_ids: Sequence[int] | None = None,
        artifact_ids: Sequence[int] | None = None,
        type: EventType | None = None,
    ) -> list[Event]:
        ev = tables.events
        cond: list[Any] = []
        if execution_ids is not None:
            cond.append(ev.c.execution_id.in_(list(execution_ids)))
        if artifact_ids is not None:
            cond.append(ev.c.artifact_id.in_(list(artifact_ids)))
        if type is not None:
            cond.append(ev.c.type == EventType(type).value)
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(ev).where(sa.and_(sa.true(), *cond)).order_by(ev.c.id))
            return [
                Event(
                    artifact_id=r.artifact_id,
                    execution_id=r.execution_id,
                    type=EventType(r.type),
                    path=r.path,
                    index=r.idx,
                    time_ms=r.time_ms,
                )
                for r in rows
            ]

    # ------------------------------------------------------------------ derived queries

    def find_cached_execution(
        self, cache_key: str
    ) -> tuple[Execution, dict[str, list[Artifact]]] | None:
        """The newest COMPLETE execution with this cache key whose outputs are all still LIVE."""
        for execution in self.get_executions(cache_key=cache_key, state=ExecutionState.COMPLETE):
            assert execution.id is not None
            outputs = self.get_outputs(execution.id)
            if all(a.state == ArtifactState.LIVE for arts in outputs.values() for a in arts):
                return execution, outputs
        return None

    def _linked(self, execution_id: int, etype: EventType) -> dict[str, list[Artifact]]:
        events = self.get_events(execution_ids=[execution_id], type=etype)
        arts = {a.id: a for a in self.get_artifacts(ids=[e.artifact_id for e in events])}
        out: dict[str, list[Artifact]] = {}
        for e in sorted(events, key=lambda e: (e.path, e.index)):
            out.setdefault(e.path, []).append(arts[e.artifact_id])
        return out

    def get_inputs(self, execution_id: int) -> dict[str, list[Artifact]]:
        """The artifacts an execution read, by input name."""
        return self._linked(execution_id, EventType.INPUT)

    def get_outputs(self, execution_id: int) -> dict[str, list[Artifact]]:
        """The artifacts an execution wrote (or reused, when CACHED), by output name."""
        return self._linked(execution_id, EventType.OUTPUT)
