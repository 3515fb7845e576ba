"""ML metadata: the MLMD data model (types, artifacts, executions, contexts, events) and lineage."""

from __future__ import annotations

from kiln.metadata._lineage import LineageGraph, lineage
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
)
from kiln.metadata._schema import SCHEMA_VERSION
from kiln.metadata._store import MetadataStore, now_ms

__all__ = [
    "SCHEMA_VERSION",
    "Artifact",
    "ArtifactState",
    "ArtifactType",
    "Context",
    "ContextType",
    "Event",
    "EventType",
    "Execution",
    "ExecutionState",
    "ExecutionType",
    "LineageGraph",
    "MetadataStore",
    "PropertyType",
    "PropertyValue",
    "TypeKind",
    "lineage",
    "now_ms",
]
