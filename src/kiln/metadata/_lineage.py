"""Lineage: everything upstream of an artifact (which data, code and parameters made it) and
everything downstream (what was made from it).

The walk goes artifact -> execution -> artifact along events, one query per hop. Executions in
state CACHED made nothing new (they reuse an earlier execution's outputs), so they are left out
unless asked for: the graph then shows each artifact's one real producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kiln.metadata._model import Artifact, Event, EventType, Execution, ExecutionState
from kiln.metadata._store import MetadataStore

__all__ = ["LineageGraph", "lineage"]

Direction = Literal["upstream", "downstream"]


@dataclass
class LineageGraph:
    """Artifacts and executions reachable from ``root`` one way, with the events between them."""

    root: int
    direction: Direction
    artifacts: dict[int, Artifact] = field(default_factory=dict)
    executions: dict[int, Execution] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def _ends(self, etype: EventType) -> list[Event]:
        return [e for e in self.events if e.type == etype]

    def producers(self, artifact_id: int) -> list[int]:
        """Executions in the graph that wrote the artifact."""
        return sorted(
            {e.execution_id for e in self._ends(EventType.OUTPUT) if e.artifact_id == artifact_id}
        )

    def consumers(self, artifact_id: int) -> list[int]:
        """Executions in the graph that read the artifact."""
        return sorted(
            {e.execution_id for e in self._ends(EventType.INPUT) if e.artifact_id == artifact_id}
        )

    def inputs_of(self, execution_id: int) -> list[Event]:
        return [e for e in self._ends(EventType.INPUT) if e.execution_id == execution_id]

    def outputs_of(self, execution_id: int) -> list[Event]:
        return [e for e in self._ends(EventType.OUTPUT) if e.execution_id == execution_id]


def lineage(
    store: MetadataStore,
    artifact_id: int,
    direction: Direction = "upstream",
    *,
    max_hops: int = 100,
    include_cached: bool = False,
) -> LineageGraph:
    """Walk the lineage graph from one artifact, upstream or downstream."""
    root = store.get_artifact(artifact_id)
    graph = LineageGraph(root=artifact_id, direction=direction, artifacts={artifact_id: root})
    # upstream: artifact <-OUTPUT- execution <-INPUT- artifact; downstream the other way round
    first, second = (
        (EventType.OUTPUT, EventType.INPUT)
        if direction == "upstream"
        else (EventType.INPUT, EventType.OUTPUT)
    )
    frontier = [artifact_id]
    seen_exec: set[int] = set()
    for _ in range(max_hops):
        if not frontier:
            break
        hop = store.get_events(artifact_ids=frontier, type=first)
        exec_ids = sorted({e.execution_id for e in hop} - seen_exec)
        executions = {
            x.id: x
            for x in store.get_executions(ids=exec_ids)
            if include_cached or x.state != ExecutionState.CACHED
        }
        # edges to executions already in the graph too (a second path to one), not only new ones
        graph.events.extend(
            e for e in hop if e.execution_id in executions or e.execution_id in graph.executions
        )
        if not executions:
            break
        for x_id, x in executions.items():
            assert x_id is not None
            graph.executions[x_id] = x
        seen_exec.update(i for i in executions if i is not None)
        back = store.get_events(execution_ids=[i for i in executions if i is not None], type=second)
        graph.events.extend(back)
        new_ids = sorted({e.artifact_id for e in back} - set(graph.artifacts))
        for a in store.get_artifacts(ids=new_ids):
            assert a.id is not None
            graph.artifacts[a.id] = a
        frontier = new_ids
    return graph
