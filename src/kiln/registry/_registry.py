"""The model registry: named models, numbered versions, aliases with their history, tags.

Storage. The registry keeps its own tables in the metadata database (schema version 2,
:mod:`kiln.metadata._schema`): ``registry_models`` (one row per name, with the counter of the
last version handed out), ``registry_versions`` (``UNIQUE(model, version)``), ``registry_aliases``,
``registry_alias_events`` (every move: who, when, why) and ``registry_tags``. Every change runs in
one write transaction that first locks the model's row (``BEGIN IMMEDIATE`` on SQLite,
``SELECT … FOR UPDATE`` on PostgreSQL), so two processes registering one name at once get
distinct versions, alias moves never interleave, and a version number is never handed out twice,
even after a delete.

Lineage. Registering writes, through the MLMD API, a ``kiln.Register`` execution that reads the
``Model`` artifact and the source artifacts (evaluation, dataset, schema…) and writes a
``ModelVersion`` artifact (the model's files, named ``models:/NAME/VERSION``), all attributed to a
``kiln.RegisteredModel`` context named after the model: ``kiln lineage`` of the version shows its
run, data, schema and evaluation. What the caller does not give is found by lineage: the run and
dataset of the step that produced the model, the newest evaluation of it, the run's schema.

Deleting a version removes it from the registry and marks its ``ModelVersion`` artifact DELETED;
the ``Model`` artifact stays (lineage points at it; ``kiln gc`` decides about files).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from kiln import metadata as md
from kiln.errors import (
    ModelNotFoundError,
    NotFoundError,
    RegistryError,
    RollbackError,
    VersionInUseError,
)
from kiln.metadata._schema import tables
from kiln.registry._uri import (
    LATEST,
    MODEL_URI_PREFIX,
    check_alias,
    check_model_name,
    check_tag_key,
    is_model_uri,
    parse_model_uri,
)
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from kiln.artifacts import Artifact as StoredArtifact
    from kiln.artifacts import ArtifactStore
    from kiln.model import Model

__all__ = [
    "MODEL_VERSION_ARTIFACT",
    "REGISTERED_MODEL_CONTEXT",
    "REGISTER_EXECUTION",
    "AliasEvent",
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "default_actor",
    "load_model",
]

REGISTERED_MODEL_CONTEXT = "kiln.RegisteredModel"
REGISTER_EXECUTION = "kiln.Register"
MODEL_VERSION_ARTIFACT = "ModelVersion"
_MODEL = "Model"  # kiln.artifacts.Model.type_name
_P = md.PropertyType
_LIST_AT_MOST = 20

AliasAction = Literal["set", "rollback", "remove"]


def default_actor() -> str:
    """Who a change is recorded as made by when no ``actor`` is given: ``$USER``."""
    return os.environ.get("USER") or "unknown"


# ---------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model.

    ``path`` is the model folder: on a local artifact root, the artifact's folder; on object
    storage, the local copy the artifact store keeps (downloaded on first use).
    """

    name: str
    version: int
    uri: str
    artifact_id: int
    created: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    actor: str = ""
    artifact_uri: str = ""
    lineage_artifact_id: int | None = None
    _artifacts: ArtifactStore | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> Path:
        if self._artifacts is None:
            raise RegistryError(f"{self.uri}: no artifact store to find its files in")
        return self._artifacts.path_of(self.artifact_uri)

    def load(self) -> Model:
        """The model (:meth:`kiln.model.Model.load` of its folder)."""
        from kiln.model import Model

        return Model.load(self.path)

    def to_dict(self) -> dict[str, Any]:
        local = self._artifacts is not None and self._artifacts.is_local
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "artifact_id": self.artifact_id,
            "path": str(self.path) if local else None,
            "created": self.created,
            "description": self.description,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
            "source": dict(self.source),
            "actor": self.actor,
        }


@dataclass(frozen=True)
class RegisteredModel:
    """A model name: its description and tags, latest version and aliases (alias -> version)."""

    name: str
    description: str
    tags: dict[str, str]
    latest_version: int | None
    aliases: dict[str, int]
    created: int
    updated: int
    num_versions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "created": self.created,
            "updated": self.updated,
            "num_versions": self.num_versions,
        }


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: to ``version`` (None: removed) from ``previous_version``."""

    alias: str
    version: int | None
    previous_version: int | None
    at: int
    actor: str
    reason: str
    action: AliasAction = "set"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
            "action": self.action,
        }


# ---------------------------------------------------------------------------------- messages


def _listing(label: str, items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_AT_MOST])
    if len(items) > _LIST_AT_MOST:
        shown += f" … ({len(items) - _LIST_AT_MOST} more)"
    return f"{label}: {shown}"


def _not_found(head: str, wanted: str, known: Sequence[str], label: str, empty: str) -> str:
    """``head``, the close names (difflib) and the known ones: what a not-found message says."""
    if not known:
        return f"{head}; {empty}"
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    if close:
        return f"{head}; did you mean {' or '.join(repr(c) for c in close)}? " + _listing(
            label, known
        )
    return f"{head}. " + _listing(label, known)


# ---------------------------------------------------------------------------------- registry

_m = tables.registry_models
_v = tables.registry_versions
_t = tables.registry_tags
_a = tables.registry_aliases
_e = tables.registry_alias_events
_art = tables.artifacts


class ModelRegistry:
    """The model registry of a workspace (its metadata database and artifact store)::

        reg = ModelRegistry(workspace)
        v = reg.register("iris", model_artifact_id)        # or reg.register_folder("iris", dir)
        reg.set_alias("iris", "production", v.version, reason="beats version 1")
        reg.resolve("models:/iris@production").load().predict(table)
        reg.rollback("iris")                               # production back where it was

    Every change is one write transaction; reads never wait for writers.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def _store(self) -> md.MetadataStore:
        return self.workspace.metadata

    @property
    def _artifacts(self) -> ArtifactStore:
        return self.workspace.artifacts

    # ------------------------------------------------------------------ registering

    def register(
        self,
        name: str,
        model: int | StoredArtifact | md.Artifact,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        source: Mapping[str, Any] | None = None,
        actor: str | None = None,
        aliases: Sequence[str] = (),
        reason: str = "",
    ) -> ModelVersion:
        """Register a LIVE ``Model`` artifact (an artifact or its id) as the next version of
        ``name`` (created on first use).

        ``source`` says where it came from: ``{"run": run_id, "evaluation": artifact_id,
        "dataset": artifact_id, "schema": artifact_id, …}``; every artifact id in it is linked by
        lineage. What is left out is found by lineage where it can be. ``aliases`` are pointed at
        the new version in the same transaction (``reason`` is recorded for them).
        """
        check_model_name(name)
        version_tags = _check_tags(tags)
        for alias in aliases:
            check_alias(alias)
        who = actor or default_actor()
        art = self._model_artifact(model)
        src, linked = self._source(art, source)
        try:
            encoded_source = json.dumps(src, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise RegistryError(f"source of {name!r} is not JSON ({e}); pass ids and text") from e
        self._ensure_types()
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model_id = self._lock_or_create(conn, name, now)
            version = int(
                conn.execute(
                    _m.update()
                    .where(_m.c.id == model_id)
                    .values(last_version=_m.c.last_version + 1, update_time_ms=now)
                    .returning(_m.c.last_version)
                ).scalar_one()
            )
            conn.execute(
                _v.insert().values(
                    model_id=model_id,
                    version=version,
                    artifact_id=art.id,
                    description=description or "",
                    source=encoded_source,
                    actor=who,
                    create_time_ms=now,
                    update_time_ms=now,
                )
            )
            if version_tags:
                conn.execute(
                    _t.insert(),
                    [
                        {"model_id": model_id, "version": version, "key": k, "value": val}
                        for k, val in version_tags.items()
                    ],
                )
            for alias in aliases:
                self._move(conn, model_id, alias, version, "set", who, reason or "registered", now)
        lineage_id = self._record_lineage(name, version, art, linked, who, src)
        with self._store.transaction(write=True) as conn:
            conn.execute(
                _v.update()
                .where(_v.c.model_id == model_id, _v.c.version == version)
                .values(lineage_artifact_id=lineage_id)
            )
        return self.get(name, version)

    def register_folder(
        self,
        name: str,
        folder: Path | str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        source: Mapping[str, Any] | None = None,
        actor: str | None = None,
        aliases: Sequence[str] = (),
        reason: str = "",
    ) -> ModelVersion:
        """Store a model folder (what :meth:`kiln.model.Model.save` wrote) as a ``Model``
        artifact in the workspace and register it as the next version of ``name``."""
        check_model_name(name)
        art = self._publish_folder(Path(folder).expanduser())
        return self.register(
            name,
            art,
            description=description,
            tags=tags,
            source=source,
            actor=actor,
            aliases=aliases,
            reason=reason,
        )

    # ------------------------------------------------------------------ reading

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """One version of ``name`` (the latest when ``version`` is None)."""
        check_model_name(name)
        with self._store.transaction() as conn:
            model = self._require_model(conn, name)
            if version is None:
                row = conn.execute(
                    sa.select(_v)
                    .where(_v.c.model_id == model.id)
                    .order_by(_v.c.version.desc())
                    .limit(1)
                ).one_or_none()
                if row is None:
                    raise ModelNotFoundError(
                        f"model {name!r} has no versions (every one was deleted); register one"
                    )
            else:
                row = self._version_row(conn, model, version)
            return self._versions(conn, model, [row])[0]

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first; ``[]`` when it has none (or is not registered
        yet: :meth:`get` and :meth:`model` are the strict ones, naming the close names)."""
        check_model_name(name)
        with self._store.transaction() as conn:
            model = self._model_row(conn, name)
            if model is None:
                return []
            rows = list(
                conn.execute(sa.select(_v).where(_v.c.model_id == model.id).order_by(_v.c.version))
            )
            return self._versions(conn, model, rows)

    def models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self._store.transaction() as conn:
            rows = list(conn.execute(sa.select(_m).order_by(_m.c.name)))
            stats = {
                r.model_id: (r.latest, r.n)
                for r in conn.execute(
                    sa.select(
                        _v.c.model_id,
                        sa.func.max(_v.c.version).label("latest"),
                        sa.func.count().label("n"),
                    ).group_by(_v.c.model_id)
                )
            }
            aliases: dict[int, dict[str, int]] = {}
            for r in conn.execute(sa.select(_a).order_by(_a.c.alias)):
                aliases.setdefault(r.model_id, {})[r.alias] = r.version
            tags: dict[int, dict[str, str]] = {}
            for r in conn.execute(sa.select(_t).where(_t.c.version == 0).order_by(_t.c.key)):
                tags.setdefault(r.model_id, {})[r.key] = r.value
        out = []
        for r in rows:
            latest, count = stats.get(r.id, (None, 0))
            out.append(
                RegisteredModel(
                    name=r.name,
                    description=r.description,
                    tags=tags.get(r.id, {}),
                    latest_version=latest,
                    aliases=aliases.get(r.id, {}),
                    created=r.create_time_ms,
                    updated=r.update_time_ms,
                    num_versions=count,
                )
            )
        return out

    def model(self, name: str) -> RegisteredModel:
        """One registered model (its description, tags, latest version and aliases)."""
        check_model_name(name)
        for m in self.models():
            if m.name == name:
                return m
        with self._store.transaction() as conn:
            raise self._no_model(conn, name)

    # ------------------------------------------------------------------ aliases

    def alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at; None when it is not set (or ``name`` is not
        registered yet). ``latest`` gives the latest version."""
        check_model_name(name)
        check_alias(alias, reading=True)
        with self._store.transaction() as conn:
            model = self._model_row(conn, name)
            if model is None:
                return None
            if alias == LATEST:
                row = conn.execute(
                    sa.select(_v)
                    .where(_v.c.model_id == model.id)
                    .order_by(_v.c.version.desc())
                    .limit(1)
                ).one_or_none()
                return None if row is None else self._versions(conn, model, [row])[0]
            holder = conn.execute(
                sa.select(_a.c.version).where(_a.c.model_id == model.id, _a.c.alias == alias)
            ).scalar_one_or_none()
            if holder is None:
                return None
            return self._versions(conn, model, [self._version_row(conn, model, holder)])[0]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (recorded with who, when and why; pointing it where it
        already points records nothing)."""
        check_model_name(name)
        check_alias(alias)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            self._version_row(conn, model, version)
            if self._move(
                conn, model.id, alias, version, "set", actor or default_actor(), reason, now
            ):
                self._touch(conn, model.id, now)
        return self.get(name, version)

    def remove_alias(
        self, name: str, alias: str, *, reason: str = "", actor: str | None = None
    ) -> None:
        """Remove ``alias`` from ``name`` (recorded in its history; ``rollback`` restores it)."""
        check_model_name(name)
        check_alias(alias)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            if self._alias_version(conn, model.id, alias) is None:
                raise self._no_alias(conn, model, alias)
            self._move(conn, model.id, alias, None, "remove", actor or default_actor(), reason, now)
            self._touch(conn, model.id, now)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of ``name``'s aliases (or of one alias), oldest first."""
        check_model_name(name)
        if alias is not None:
            check_alias(alias, reading=True)
        with self._store.transaction() as conn:
            model = self._require_model(conn, name)
            q = sa.select(_e).where(_e.c.model_id == model.id)
            if alias is not None:
                q = q.where(_e.c.alias == alias)
            return [_event(r) for r in conn.execute(q.order_by(_e.c.id))]

    def rollback(
        self,
        name: str,
        alias: str = "production",
        *,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelVersion:
        """Move ``alias`` back to the version it pointed at before its last move.

        Rollbacks undo moves one at a time: after ``1 -> 2 -> 3``, two rollbacks give 2, then 1.
        A :class:`RollbackError` when there is no earlier holder (or it was deleted).
        """
        check_model_name(name)
        check_alias(alias)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            events = list(
                conn.execute(
                    sa.select(_e)
                    .where(_e.c.model_id == model.id, _e.c.alias == alias)
                    .order_by(_e.c.id)
                )
            )
            if not events:
                raise self._no_alias(conn, model, alias)
            undo: list[int | None] = []  # the holder before each move not yet undone
            for e in events:
                if e.action == "rollback":
                    if undo:
                        undo.pop()
                else:
                    undo.append(e.previous_version)
            current = self._alias_version(conn, model.id, alias)
            if not undo or undo[-1] is None:
                where = f"version {current}" if current is not None else "nothing"
                raise RollbackError(
                    f"alias {alias!r} of model {name!r} has no previous holder to roll back to "
                    f"(it points at {where}); point it yourself: "
                    f"kiln models alias {name} VERSION {alias}"
                )
            target = undo[-1]
            exists = conn.execute(
                sa.select(_v.c.id).where(_v.c.model_id == model.id, _v.c.version == target)
            ).scalar_one_or_none()
            if exists is None:
                raise RollbackError(
                    f"alias {alias!r} of model {name!r} was on version {target} before, but that "
                    f"version was deleted; point it yourself: kiln models alias {name} VERSION "
                    f"{alias}"
                )
            why = reason or f"rollback from version {current}"
            self._move(
                conn,
                model.id,
                alias,
                target,
                "rollback",
                actor or default_actor(),
                why,
                now,
                always=True,
            )
            self._touch(conn, model.id, now)
        return self.get(name, target)

    # ------------------------------------------------------------------ changing

    def delete_version(self, name: str, version: int) -> None:
        """Remove a version from the registry; refused while an alias points at it. Its number
        is never reused; the ``Model`` artifact stays in the store (``kiln gc`` decides)."""
        check_model_name(name)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            holding = list(
                conn.execute(
                    sa.select(_a.c.alias)
                    .where(_a.c.model_id == model.id, _a.c.version == version)
                    .order_by(_a.c.alias)
                ).scalars()
            )
            if holding:
                names = ", ".join(holding)
                raise VersionInUseError(
                    f"version {version} of model {name!r} holds alias {names}; move it first "
                    f"(kiln models alias {name} VERSION {holding[0]}, or kiln models rollback "
                    f"{name} --alias {holding[0]}), then delete"
                )
            conn.execute(_t.delete().where(_t.c.model_id == model.id, _t.c.version == version))
            conn.execute(_v.delete().where(_v.c.id == row.id))
            self._touch(conn, model.id, now)
        if row.lineage_artifact_id is not None:
            gone = self._store.get_artifacts(ids=[row.lineage_artifact_id])
            for a in gone:
                a.state = md.ArtifactState.DELETED
            self._store.put_artifacts(gone)

    def set_tag(self, name: str, key: str, value: str, version: int | None = None) -> None:
        """Tag the model (or one of its versions) with ``key`` = ``value``."""
        check_model_name(name)
        check_tag_key(key)
        if not isinstance(value, str):
            raise RegistryError(f"tag {key!r}: the value must be text, got {type(value).__name__}")
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            if version is not None:
                self._version_row(conn, model, version)
            where = (_t.c.model_id == model.id, _t.c.version == (version or 0), _t.c.key == key)
            conn.execute(_t.delete().where(*where))
            conn.execute(
                _t.insert().values(model_id=model.id, version=version or 0, key=key, value=value)
            )
            self._touch(conn, model.id, now)

    def remove_tag(self, name: str, key: str, version: int | None = None) -> None:
        check_model_name(name)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            if version is not None:
                self._version_row(conn, model, version)
            gone = conn.execute(
                _t.delete().where(
                    _t.c.model_id == model.id, _t.c.version == (version or 0), _t.c.key == key
                )
            ).rowcount
            if not gone:
                what = f"version {version} of model {name!r}" if version else f"model {name!r}"
                raise ModelNotFoundError(f"{what} has no tag {key!r}")
            self._touch(conn, model.id, now)

    def set_description(self, name: str, text: str, version: int | None = None) -> None:
        """Describe the model (or one of its versions)."""
        check_model_name(name)
        now = md.now_ms()
        with self._store.transaction(write=True) as conn:
            model = self._require_model(conn, name, lock=True)
            if version is None:
                conn.execute(_m.update().where(_m.c.id == model.id).values(description=text))
            else:
                row = self._version_row(conn, model, version)
                conn.execute(
                    _v.update()
                    .where(_v.c.id == row.id)
                    .values(description=text, update_time_ms=now)
                )
            self._touch(conn, model.id, now)

    # ------------------------------------------------------------------ URIs

    def resolve(self, uri_or_path: str | Path) -> ModelVersion | Path:
        """A ``models:/`` URI's version, or a model folder's path (as given, checked to exist)."""
        text = str(uri_or_path)
        if isinstance(uri_or_path, str) and is_model_uri(text):
            uri = parse_model_uri(text)
            if uri.alias is None:
                return self.get(uri.name, uri.version)
            with self._store.transaction() as conn:
                model = self._require_model(conn, uri.name)
                holder = self._alias_version(conn, model.id, uri.alias)
                if holder is None:
                    raise self._no_alias(conn, model, uri.alias)
            return self.get(uri.name, holder)
        path = Path(text).expanduser()
        if path.is_dir():
            return path
        hint = ""
        if _looks_like_name(text):
            with self._store.transaction() as conn:
                if self._model_row(conn, text) is not None:
                    hint = f"; did you mean the registered model {MODEL_URI_PREFIX}{text}?"
        raise ModelNotFoundError(
            f"no model folder {text}{hint}"
            + ("" if hint else f" (pass a folder Model.save wrote, or {MODEL_URI_PREFIX}NAME)")
        )

    # ------------------------------------------------------------------ internals: rows

    @staticmethod
    def _model_row(conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        q = sa.select(_m).where(_m.c.name == name)
        if lock:
            q = q.with_for_update()
        return conn.execute(q).one_or_none()

    def _require_model(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        row = self._model_row(conn, name, lock=lock)
        if row is None:
            raise self._no_model(conn, name)
        return row

    @staticmethod
    def _no_model(conn: sa.Connection, name: str) -> ModelNotFoundError:
        names = list(conn.execute(sa.select(_m.c.name).order_by(_m.c.name)).scalars())
        return ModelNotFoundError(
            _not_found(
                f"no model {name!r}",
                name,
                names,
                "Models",
                "no model is registered in this workspace yet "
                "(kiln models register NAME FOLDER, or a pipeline's Pusher)",
            )
        )

    @staticmethod
    def _version_row(conn: sa.Connection, model: Any, version: int) -> Any:
        if isinstance(version, bool) or not isinstance(version, int):
            raise RegistryError(f"version {version!r} of model {model.name!r} is not a number")
        row = conn.execute(
            sa.select(_v).where(_v.c.model_id == model.id, _v.c.version == version)
        ).one_or_none()
        if row is not None:
            return row
        known = list(
            conn.execute(
                sa.select(_v.c.version).where(_v.c.model_id == model.id).order_by(_v.c.version)
            ).scalars()
        )
        why = " (it was deleted)" if 1 <= version <= model.last_version else ""
        head = f"model {model.name!r} has no version {version}{why}"
        if not known:
            raise ModelNotFoundError(f"{head}; it has no versions left")
        raise ModelNotFoundError(
            f"{head}. Versions: {', '.join(map(str, known))} (latest {known[-1]})"
        )

    @staticmethod
    def _alias_version(conn: sa.Connection, model_id: int, alias: str) -> int | None:
        found = conn.execute(
            sa.select(_a.c.version).where(_a.c.model_id == model_id, _a.c.alias == alias)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    @staticmethod
    def _no_alias(conn: sa.Connection, model: Any, alias: str) -> ModelNotFoundError:
        rows = list(
            conn.execute(
                sa.select(_a.c.alias, _a.c.version)
                .where(_a.c.model_id == model.id)
                .order_by(_a.c.alias)
            )
        )
        head = f"model {model.name!r} has no alias {alias!r}"
        names = [r.alias for r in rows]
        close = difflib.get_close_matches(alias, names, n=3, cutoff=0.6)
        listing = ", ".join(f"{r.alias} -> {r.version}" for r in rows)
        if not rows:
            return ModelNotFoundError(
                f"{head}; it has no aliases yet (kiln models alias {model.name} VERSION {alias})"
            )
        if close:
            return ModelNotFoundError(
                f"{head}; did you mean {' or '.join(repr(c) for c in close)}? Aliases: {listing}"
            )
        return ModelNotFoundError(f"{head}. Aliases: {listing}")

    def _lock_or_create(self, conn: sa.Connection, name: str, now: int) -> int:
        """The id of ``name``'s row, created when new, locked until the transaction ends."""
        row = {
            "name": name,
            "description": "",
            "last_version": 0,
            "create_time_ms": now,
            "update_time_ms": now,
        }
        stmt: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(_m).on_conflict_do_nothing(index_elements=["name"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(_m).on_conflict_do_nothing(index_elements=["name"])
        conn.execute(stmt, [row])
        return int(self._require_model(conn, name, lock=True).id)

    @staticmethod
    def _touch(conn: sa.Connection, model_id: int, now: int) -> None:
        conn.execute(_m.update().where(_m.c.id == model_id).values(update_time_ms=now))

    def _move(
        self,
        conn: sa.Connection,
        model_id: int,
        alias: str,
        version: int | None,
        action: AliasAction,
        actor: str,
        reason: str,
        now: int,
        *,
        always: bool = False,
    ) -> bool:
        """Point ``alias`` at ``version`` (None: remove it) and record the move; False when it
        already pointed there (nothing recorded unless ``always``)."""
        previous = self._alias_version(conn, model_id, alias)
        if previous == version and not always:
            return False
        where = (_a.c.model_id == model_id, _a.c.alias == alias)
        if version is None:
            conn.execute(_a.delete().where(*where))
        elif previous is None:
            conn.execute(
                _a.insert().values(
                    model_id=model_id, alias=alias, version=version, update_time_ms=now
                )
            )
        else:
            conn.execute(_a.update().where(*where).values(version=version, update_time_ms=now))
        conn.execute(
            _e.insert().values(
                model_id=model_id,
                alias=alias,
                action=action,
                version=version,
                previous_version=previous,
                time_ms=now,
                actor=actor,
                reason=reason,
            )
        )
        return True

    def _versions(self, conn: sa.Connection, model: Any, rows: Sequence[Any]) -> list[ModelVersion]:
        """ModelVersions of ``rows`` of one model, their tags, aliases and artifact URIs."""
        numbers = [r.version for r in rows]
        tags: dict[int, dict[str, str]] = {}
        for t in conn.execute(
            sa.select(_t)
            .where(_t.c.model_id == model.id, _t.c.version.in_(numbers))
            .order_by(_t.c.key)
        ):
            tags.setdefault(t.version, {})[t.key] = t.value
        aliases: dict[int, list[str]] = {}
        for a in conn.execute(
            sa.select(_a)
            .where(_a.c.model_id == model.id, _a.c.version.in_(numbers))
            .order_by(_a.c.alias)
        ):
            aliases.setdefault(a.version, []).append(a.alias)
        uris = {
            r.id: r.uri
            for r in conn.execute(
                sa.select(_art.c.id, _art.c.uri).where(_art.c.id.in_([r.artifact_id for r in rows]))
            )
        }
        return [
            ModelVersion(
                name=model.name,
                version=r.version,
                uri=f"{MODEL_URI_PREFIX}{model.name}/{r.version}",
                artifact_id=r.artifact_id,
                created=r.create_time_ms,
                description=r.description,
                tags=tags.get(r.version, {}),
                aliases=aliases.get(r.version, []),
                source=json.loads(r.source or "{}"),
                actor=r.actor,
                artifact_uri=uris.get(r.artifact_id, ""),
                lineage_artifact_id=r.lineage_artifact_id,
                _artifacts=self._artifacts,
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ internals: artifacts

    def _model_artifact(self, model: int | StoredArtifact | md.Artifact) -> md.Artifact:
        if isinstance(model, bool):
            raise RegistryError(f"model {model!r} is not a Model artifact or an artifact id")
        artifact_id = model if isinstance(model, int) else getattr(model, "id", None)
        if not isinstance(artifact_id, int):
            raise RegistryError(
                f"the model to register ({model!r}) is not stored in the workspace yet (it has "
                "no artifact id): register a published Model artifact, or a saved model folder "
                "with register_folder(name, folder)"
            )
        try:
            art = self._store.get_artifact(artifact_id)
        except NotFoundError:
            raise ModelNotFoundError(
                f"no artifact with id {artifact_id} in this workspace; "
                "`kiln artifacts --type Model` lists the models"
            ) from None
        if art.type_name != _MODEL:
            raise RegistryError(
                f"artifact {artifact_id} is a {art.type_name}, not a Model; "
                "`kiln artifacts --type Model` lists the models"
            )
        if art.state != md.ArtifactState.LIVE:
            raise RegistryError(
                f"Model artifact {artifact_id} is {art.state.value}, not LIVE: its files are "
                "not (or no longer) in the store; register a LIVE one"
            )
        return art

    def _source(
        self, art: md.Artifact, given: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, md.Artifact]]:
        """The source to record (given, completed by lineage) and the artifacts it names."""
        src = {str(k): v for k, v in (given or {}).items() if v is not None}
        for key, value in self._derived_source(art).items():
            src.setdefault(key, value)
        ids = {
            k: v
            for k, v in src.items()
            if isinstance(v, int) and not isinstance(v, bool) and not (k == "model" and v == art.id)
        }
        found = {a.id: a for a in self._store.get_artifacts(ids=list(set(ids.values())))}
        linked: dict[str, md.Artifact] = {}
        for key, artifact_id in ids.items():
            if artifact_id not in found:
                raise RegistryError(
                    f"source {key!r} names artifact {artifact_id}, which is not in this "
                    "workspace; `kiln artifacts` lists them"
                )
            linked[key] = found[artifact_id]
        return src, linked

    def _derived_source(self, art: md.Artifact) -> dict[str, Any]:
        """Run, dataset, schema and evaluation of a model, found by lineage (what is known)."""
        assert art.id is not None
        s = self._store
        out: dict[str, Any] = {}
        made = s.get_events(artifact_ids=[art.id], type=md.EventType.OUTPUT)
        producers = [
            x
            for x in s.get_executions(ids=[e.execution_id for e in made])
            if x.state == md.ExecutionState.COMPLETE
        ]
        if producers:
            x = producers[-1]
            assert x.id is not None
            run = x.properties.get("run")
            if isinstance(run, str) and run:
                out["run"] = run
            for arts in s.get_inputs(x.id).values():
                for a in arts:
                    if a.type_name == "Dataset" and "dataset" not in out:
                        out["dataset"] = a.id
            for ctx in s.get_contexts(execution_id=x.id):
                if ctx.name == run and ctx.id is not None:
                    schemas = s.get_artifacts(
                        type_name="Schema",
                        state=md.ArtifactState.LIVE,
                        context_id=ctx.id,
                        limit=1,
                    )
                    if schemas:
                        out["schema"] = schemas[0].id
        read = s.get_events(artifact_ids=[art.id], type=md.EventType.INPUT)
        consumers = sorted({e.execution_id for e in read})
        written = s.get_events(execution_ids=consumers, type=md.EventType.OUTPUT) if read else []
        evaluations = [
            a
            for a in s.get_artifacts(
                ids=sorted({e.artifact_id for e in written}), type_name="ModelEvaluation"
            )
            if a.state == md.ArtifactState.LIVE
        ]
        if evaluations:
            out["evaluation"] = max(a.id or 0 for a in evaluations)
        return out

    def _ensure_types(self) -> None:
        s = self._store
        s.put_context_type(REGISTERED_MODEL_CONTEXT)
        s.put_execution_type(
            REGISTER_EXECUTION,
            {
                "model": _P.STRING,
                "version": _P.INT,
                "actor": _P.STRING,
                "run": _P.STRING,
                "params": _P.JSON,
            },
        )
        s.put_artifact_type(
            MODEL_VERSION_ARTIFACT,
            {"model": _P.STRING, "version": _P.INT},
            description="A registered model version: the Model artifact's files under a name.",
        )

    def _record_lineage(
        self,
        name: str,
        version: int,
        model: md.Artifact,
        linked: Mapping[str, md.Artifact],
        actor: str,
        source: Mapping[str, Any],
    ) -> int:
        """The Register execution: model and sources in, the ModelVersion artifact out."""
        s = self._store
        uri = f"{MODEL_URI_PREFIX}{name}/{version}"
        context = s.put_context(md.Context(REGISTERED_MODEL_CONTEXT, name))
        out = md.Artifact(
            MODEL_VERSION_ARTIFACT,
            model.uri,
            md.ArtifactState.LIVE,
            name=uri,
            fingerprint=model.fingerprint,
            properties={"model": name, "version": version},
        )
        execution = md.Execution(
            REGISTER_EXECUTION,
            name=uri,
            state=md.ExecutionState.COMPLETE,
            properties={
                "model": name,
                "version": version,
                "actor": actor,
                "run": str(source.get("run", "")),
                "params": {"name": name, "version": version, "actor": actor},
            },
        )
        s.put_execution(
            execution,
            inputs={"model": [model], **{k: [a] for k, a in linked.items()}},
            outputs={"model_version": [out]},
            contexts=[context],
        )
        assert out.id is not None
        return out.id

    def _publish_folder(self, folder: Path) -> md.Artifact:
        """A model folder copied into the artifact store and recorded as a LIVE Model artifact.

        The copy is published (moved into place whole) before the metadata names it: a crash
        leaves at most an unreferenced folder, which ``kiln gc`` removes.
        """
        from kiln.artifacts import MANIFEST, fingerprint
        from kiln.artifacts import Model as ModelArtifact
        from kiln.model import Model

        if not folder.is_dir():
            raise ModelNotFoundError(
                f"no model folder {folder}; pass the folder kiln.model.Model.save wrote"
            )
        fitted = Model.load(folder)  # refuses a folder that is not a model, or was modified
        arts = self._artifacts
        staged = arts.staging_dir()
        uri = arts.new_uri(_MODEL)
        try:
            shutil.copytree(folder, staged, dirs_exist_ok=True)
            (staged / MANIFEST).write_text(
                json.dumps({"type": _MODEL, "version": ModelArtifact.version}, sort_keys=True)
            )
            digest = fingerprint(staged)
            arts.publish(staged, uri)
        except OSError as e:
            shutil.rmtree(staged, ignore_errors=True)
            raise RegistryError(f"cannot copy model folder {folder} into the store: {e}") from e
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        s = self._store
        s.put_artifact_type(
            _MODEL,
            ModelArtifact.properties,
            version=str(ModelArtifact.version),
            description=ModelArtifact.description,
        )
        [art] = s.put_artifacts(
            [
                md.Artifact(
                    _MODEL,
                    uri,
                    md.ArtifactState.LIVE,
                    fingerprint=digest,
                    properties={
                        "model_type": fitted.trainer.model_type,
                        "task": fitted.task,
                        "label": fitted.label or "",
                    },
                    custom_properties={
                        "format_version": ModelArtifact.version,
                        "imported_from": str(folder.resolve()),
                    },
                )
            ]
        )
        return art


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        check_tag_key(key)
        if not isinstance(value, str):
            raise RegistryError(f"tag {key!r}: the value must be text, got {type(value).__name__}")
        out[key] = value
    return out


def _event(r: Any) -> AliasEvent:
    return AliasEvent(
        alias=r.alias,
        version=r.version,
        previous_version=r.previous_version,
        at=r.time_ms,
        actor=r.actor,
        reason=r.reason,
        action=r.action,
    )


def _looks_like_name(text: str) -> bool:
    try:
        check_model_name(text)
    except RegistryError:
        return False
    return True


def load_model(uri_or_path: str | Path, workspace: Workspace | None = None) -> Model:
    """The model at a ``models:/`` URI (in ``workspace``, else the one found from here) or in a
    model folder (no workspace needed)."""
    from kiln.model import Model

    text = str(uri_or_path)
    if isinstance(uri_or_path, str) and is_model_uri(text):
        parse_model_uri(text)  # a malformed URI fails before any workspace is looked for
        ws = workspace or Workspace.find()
        if ws is None:
            raise RegistryError(
                f"{text} names a registered model, and there is no Kiln workspace here (no "
                "kiln.toml in this folder or above, KILN_HOME unset); run from the workspace "
                "or set KILN_HOME"
            )
        try:
            found = ModelRegistry(ws).resolve(text)
            assert isinstance(found, ModelVersion)
            return found.load()
        finally:
            if workspace is None:
                ws.close()
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(
            f"no model folder {text} (pass a folder Model.save wrote, or {MODEL_URI_PREFIX}NAME)"
        )
    return Model.load(path)
