"""ML metadata: the MLMD data model (types, artifacts, executions, contexts, events) and lineage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.metadata._lineage import (
        LineageGraph,
        lineage,
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
    )
    from kiln.metadata._schema import (
        SCHEMA_VERSION,
    )
    from kiln.metadata._store import (
        MetadataStore,
        now_ms,
    )

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

_EXPORTS = {
    "LineageGraph": "kiln.metadata._lineage",
    "lineage": "kiln.metadata._lineage",
    "Artifact": "kiln.metadata._model",
    "ArtifactState": "kiln.metadata._model",
    "ArtifactType": "kiln.metadata._model",
    "Context": "kiln.metadata._model",
    "ContextType": "kiln.metadata._model",
    "Event": "kiln.metadata._model",
    "EventType": "kiln.metadata._model",
    "Execution": "kiln.metadata._model",
    "ExecutionState": "kiln.metadata._model",
    "ExecutionType": "kiln.metadata._model",
    "PropertyType": "kiln.metadata._model",
    "PropertyValue": "kiln.metadata._model",
    "TypeKind": "kiln.metadata._model",
    "SCHEMA_VERSION": "kiln.metadata._schema",
    "MetadataStore": "kiln.metadata._store",
    "now_ms": "kiln.metadata._store",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
