"""The metadata database's tables, its schema version and the migrations between versions.

The tables below are the current schema. Migration ``n`` takes a database from version ``n - 1``
to ``n`` (migration 1 creates an empty database), and a fresh database goes through every one of
them, so the upgrade path is the path every test takes. Once a version has been released, a schema
change never edits an earlier migration: it adds the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "tables"]

meta = sa.MetaData()


def _props_table(owner: str) -> sa.Table:
    return sa.Table(
        f"{owner}_properties",
        meta,
        sa.Column(
            f"{owner}_id",
            sa.Integer,
            sa.ForeignKey(f"{owner}s.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("is_custom", sa.Boolean, primary_key=True),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("int_value", sa.BigInteger),
        sa.Column("double_value", sa.Float),
        sa.Column("string_value", sa.Text),
    )


schema_version = sa.Table(
    "kiln_schema",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

types = sa.Table(
    "types",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(64), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("kind", "name", name="uq_types_kind_name"),
)

type_properties = sa.Table(
    "type_properties",
    meta,
    sa.Column(
        "type_id", sa.Integer, sa.ForeignKey("types.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("data_type", sa.String(16), nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type_id", sa.Integer, sa.ForeignKey("types.id"), nullable=False, index=True),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("fingerprint", sa.String(80)),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
)

executions = sa.Table(
    "executions",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type_id", sa.Integer, sa.ForeignKey("types.id"), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(80), index=True),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
)

contexts = sa.Table(
    "contexts",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type_id", sa.Integer, sa.ForeignKey("types.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("type_id", "name", name="uq_contexts_type_name"),
)

artifact_properties = _props_table("artifact")
execution_properties = _props_table("execution")
context_properties = _props_table("context")

events = sa.Table(
    "events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "artifact_id",
        sa.Integer,
        sa.ForeignKey("artifacts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "execution_id",
        sa.Integer,
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("path", sa.String(255), nullable=False, default=""),
    sa.Column("idx", sa.Integer, nullable=False, default=0),
    sa.Column("time_ms", sa.BigInteger, nullable=False),
)

attributions = sa.Table(
    "attributions",
    meta,
    sa.Column(
        "context_id", sa.Integer, sa.ForeignKey("contexts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "artifact_id",
        sa.Integer,
        sa.ForeignKey("artifacts.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

associations = sa.Table(
    "associations",
    meta,
    sa.Column(
        "context_id", sa.Integer, sa.ForeignKey("contexts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "execution_id",
        sa.Integer,
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

# ---------------------------------------------------------------- the model registry (version 2)
# Named models, their numbered versions, aliases (with every move in alias_events) and tags.
# ``registry_models.last_version`` is the per-name counter: a registration increments it in the
# same write transaction that inserts the version, so two processes registering one name at once
# get distinct numbers, and a deleted version's number is never handed out again.

registry_models = sa.Table(
    "registry_models",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("last_version", sa.Integer, nullable=False, default=0),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
)

registry_versions = sa.Table(
    "registry_versions",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False),
    # the Model artifact; artifacts are never deleted as rows (their state says DELETED)
    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True),
    # the ModelVersion artifact the registration wrote (what `kiln lineage` starts from)
    sa.Column(
        "lineage_artifact_id", sa.Integer, sa.ForeignKey("artifacts.id", ondelete="SET NULL")
    ),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.Text, nullable=False, default="{}"),  # JSON: run, evaluation, data...
    sa.Column("actor", sa.String(255), nullable=False, default=""),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_registry_versions_model_version"),
)

registry_tags = sa.Table(
    "registry_tags",
    meta,
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),  # 0: a tag of the model itself
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

registry_aliases = sa.Table(
    "registry_aliases",
    meta,
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("update_time_ms", sa.BigInteger, nullable=False),
)

registry_alias_events = sa.Table(
    "registry_alias_events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # set, rollback, remove
    sa.Column("version", sa.Integer),  # None: removed
    sa.Column("previous_version", sa.Integer),  # None: the alias was not set
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Index("ix_registry_alias_events_model_alias", "model_id", "alias"),
)

PROPERTY_TABLES = {
    "artifact": artifact_properties,
    "execution": execution_properties,
    "context": context_properties,
}


# Version 1's tables, named: a later version's tables are created by its own migration.
_V1_TABLES = [
    types,
    type_properties,
    artifacts,
    executions,
    contexts,
    artifact_properties,
    execution_properties,
    context_properties,
    events,
    attributions,
    associations,
]
_V2_TABLES = [
    registry_models,
    registry_versions,
    registry_tags,
    registry_aliases,
    registry_alias_events,
]


def _v1_create(conn: sa.Connection) -> None:
    meta.create_all(conn, tables=_V1_TABLES)


def _v2_registry(conn: sa.Connection) -> None:
    """The model registry's tables (an existing store gains them, empty, in place)."""
    meta.create_all(conn, tables=_V2_TABLES)


Migration = Callable[[sa.Connection], None]

# version -> the step that brings a database from version - 1 to it
MIGRATIONS: Mapping[int, Migration] = {1: _v1_create, 2: _v2_registry}
SCHEMA_VERSION = max(MIGRATIONS)


class tables:
    schema_version = schema_version
    types = types
    type_properties = type_properties
    artifacts = artifacts
    executions = executions
    contexts = contexts
    events = events
    attributions = attributions
    associations = associations
    properties = PROPERTY_TABLES
    registry_models = registry_models
    registry_versions = registry_versions
    registry_tags = registry_tags
    registry_aliases = registry_aliases
    registry_alias_events = registry_alias_events
    meta = meta
