"""The MLMD data model: types, artifacts, executions, contexts and the edges between them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
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
    "PropertyType",
    "PropertyValue",
    "TypeKind",
]

PropertyValue = int | float | str | bool | list[Any] | dict[str, Any] | None


class TypeKind(enum.StrEnum):
    ARTIFACT = "ARTIFACT"
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"


class PropertyType(enum.StrEnum):
    """The type of a declared property; values are checked against it when written."""

    INT = "INT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    BOOL = "BOOL"
    JSON = "JSON"


class ArtifactState(enum.StrEnum):
    PENDING = "PENDING"  # registered, files still being written; not visible
    LIVE = "LIVE"  # complete, published, fingerprinted
    DELETED = "DELETED"  # files removed (or never published: the producing step failed)


class ExecutionState(enum.StrEnum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CACHED = "CACHED"  # outputs reused from an earlier COMPLETE execution with the same key


class EventType(enum.StrEnum):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


@dataclass(frozen=True)
class _TypeBase:
    name: str
    properties: Mapping[str, PropertyType] = field(default_factory=dict)
    version: str = ""
    description: str = ""
    id: int | None = None


@dataclass(frozen=True)
class ArtifactType(_TypeBase):
    """A kind of artifact (``Dataset``, ``Model``…) and the properties its artifacts declare."""


@dataclass(frozen=True)
class ExecutionType(_TypeBase):
    """A kind of execution: one per component."""


@dataclass(frozen=True)
class ContextType(_TypeBase):
    """A kind of context: a pipeline, a pipeline run, a registered model…"""


@dataclass
class Artifact:
    """One artifact: files at ``uri`` (relative to the artifact root), and what is known of it."""

    type_name: str
    uri: str
    state: ArtifactState = ArtifactState.PENDING
    name: str = ""
    fingerprint: str | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    custom_properties: dict[str, PropertyValue] = field(default_factory=dict)
    id: int | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None


@dataclass
class Execution:
    """One run of one component, with its parameters, code version, state and timings."""

    type_name: str
    name: str = ""
    state: ExecutionState = ExecutionState.RUNNING
    cache_key: str | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    custom_properties: dict[str, PropertyValue] = field(default_factory=dict)
    id: int | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None


@dataclass
class Context:
    """A grouping of artifacts and executions: a pipeline, one run of it, a model name."""

    type_name: str
    name: str
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    custom_properties: dict[str, PropertyValue] = field(default_factory=dict)
    id: int | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None


@dataclass(frozen=True)
class Event:
    """An edge between an artifact and an execution, which read (INPUT) or wrote (OUTPUT) it.

    ``path`` is the input or output name on the component, ``index`` its position in a list.
    """

    artifact_id: int
    execution_id: int
    type: EventType
    path: str = ""
    index: int = 0
    time_ms: int | None = None
