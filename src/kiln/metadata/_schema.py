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

PROPERTY_TABLES = {
    "artifact": artifact_properties,
    "execution": execution_properties,
    "context": context_properties,
}


def _v1_create(conn: sa.Connection) -> None:
    meta.create_all(conn, tables=[t for t in meta.sorted_tables if t is not schema_version])


Migration = Callable[[sa.Connection], None]

# version -> the step that brings a database from version - 1 to it
MIGRATIONS: Mapping[int, Migration] = {1: _v1_create}
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
    meta = meta
