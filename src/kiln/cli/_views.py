"""Tables and trees for ``kiln runs``, ``kiln artifacts`` and ``kiln lineage``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from kiln import metadata as md
from kiln.errors import NotFoundError
from kiln.orchestration import RUN_CONTEXT
from kiln.orchestration._gc import process_alive
from kiln.workspace import Workspace

__all__ = ["artifacts_table", "lineage_tree", "run_detail", "runs_table"]

_STATE_STYLE = {
    "COMPLETE": "green",
    "CACHED": "cyan",
    "FAILED": "red",
    "RUNNING": "yellow",
    "LIVE": "green",
    "PENDING": "yellow",
    "DELETED": "dim",
    "ABORTED": "red",
}


def _when(ms: object) -> str:
    if not isinstance(ms, int):
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _secs(ms: object) -> str:
    return f"{ms / 1000:.2f} s" if isinstance(ms, int) else ""


def _state(state: str) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/]" if style else state


def run_state(props: dict[str, md.PropertyValue]) -> str:
    """A run's state; RUNNING on this machine with its process gone reads ABORTED."""
    state = str(props.get("state", ""))
    if state == "RUNNING" and process_alive(props) is False:
        return "ABORTED"
    return state


def _table(*columns: str) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")  # ids and paths wrap, never lose characters to "…"
    return t


def runs_table(ws: Workspace, limit: int) -> RenderableType:
    store = ws.metadata
    try:
        runs = store.get_contexts(type_name=RUN_CONTEXT, limit=limit)
    except NotFoundError:
        runs = []
    if not runs:
        return "no runs yet: kiln run PIPELINE.py"
    t = _table("run", "pipeline", "state", "started", "time", "trigger", "steps")
    for r in runs:
        p = r.properties
        states = [x.state for x in store.get_executions(context_id=r.id)]
        counts = ", ".join(
            f"{sum(s == st for s in states)} {st.lower()}"
            for st in md.ExecutionState
            if any(s == st for s in states)
        )
        start, end = p.get("start_ms"), p.get("end_ms")
        took = end - start if isinstance(start, int) and isinstance(end, int) else None
        t.add_row(
            r.name,
            str(p.get("pipeline", "")),
            _state(run_state(p)),
            _when(start),
            _secs(took),
            escape(_trigger(p.get("trigger"))),
            counts,
        )
    return t


def _trigger(trigger: object) -> str:
    """Why a run ran, in a few words: manual, every 1h (tick 3), new data: a.csv, b.csv."""
    if not isinstance(trigger, dict):
        return "manual"  # runs recorded before triggers, and the Python API's
    kind = trigger.get("kind")
    if kind == "schedule":
        return f"every {trigger.get('every', '?')} (tick {trigger.get('tick', '?')})"
    if kind == "new_data":
        names = [Path(str(p)).name for p in trigger.get("arrivals") or trigger.get("paths") or []]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        return f"new data: {shown}" if shown else "new data"
    return str(kind or "manual")


def run_detail(ws: Workspace, run_id: str) -> list[RenderableType]:
    store = ws.metadata
    try:
        run = store.get_context(RUN_CONTEXT, run_id)
    except NotFoundError:
        raise NotFoundError(
            f"no run {run_id!r} in this workspace; `kiln runs` lists them"
        ) from None
    p = run.properties
    head = Table.grid(padding=(0, 2))
    head.add_row("[bold]run[/]", run.name)
    head.add_row("[bold]pipeline[/]", str(p.get("pipeline", "")))
    head.add_row("[bold]state[/]", _state(run_state(p)))
    head.add_row("[bold]started[/]", _when(p.get("start_ms")))
    head.add_row("[bold]trigger[/]", escape(_trigger(p.get("trigger"))))
    head.add_row("[bold]parameters[/]", escape(json.dumps(p.get("params", {}), sort_keys=True)))
    head.add_row("[bold]command[/]", escape(str(p.get("command", ""))))
    executions = {x.name: x for x in store.get_executions(context_id=run.id, newest_first=False)}
    t = _table("step", "component", "state", "time", "outputs", "cache")
    for name in p.get("steps") or list(executions):  # type: ignore[union-attr]
        x = executions.get(str(name))
        if x is None:
            t.add_row(str(name), "", "[dim]not run[/]", "", "", "")
            continue
        assert x.id is not None
        outs = store.get_outputs(x.id)
        t.add_row(
            x.name,
            x.type_name,
            _state(x.state.value),
            _secs(x.properties.get("duration_ms")),
            ", ".join(f"{k}: {a.type_name} #{a.id}" for k, arts in outs.items() for a in arts),
            escape(str(x.properties.get("cache_reason", ""))),
        )
    parts: list[RenderableType] = [head, t]
    if p.get("error"):
        parts.append(f"[red]error:[/] {escape(str(p['error']))}")
    return parts


def artifacts_table(
    ws: Workspace, type_name: str | None, all_states: bool, limit: int
) -> RenderableType:
    store = ws.metadata
    state = None if all_states else md.ArtifactState.LIVE
    arts = store.get_artifacts(type_name=type_name, state=state, limit=limit)
    if not arts:
        what = f"{type_name} artifacts" if type_name else "artifacts"
        return f"no {what} yet"
    t = _table("id", "type", "state", "created", "fingerprint", "properties", "path")
    for a in arts:
        props = ", ".join(
            f"{k}={v}" for k, v in a.properties.items() if not isinstance(v, dict | list)
        )
        t.add_row(
            str(a.id),
            a.type_name,
            _state(a.state.value),
            _when(a.create_time_ms),
            (a.fingerprint or "")[7:19],
            escape(props),
            escape(str(ws.artifacts.path_of(a.uri))) if a.state == md.ArtifactState.LIVE else "",
        )
    return t


def _artifact_label(a: md.Artifact) -> str:
    short = (a.fingerprint or "")[7:19]
    return f"[bold]{a.type_name} #{a.id}[/] {_state(a.state.value)} [dim]{short}[/]"


def _execution_label(x: md.Execution) -> str:
    p = x.properties
    params = escape(json.dumps(p.get("params", {}), sort_keys=True))
    code = p.get("code_parts")
    code_id = ""
    if isinstance(code, dict) and code:
        code_id = f" code {str(sorted(code.items())[0][1])[:8]}"
    return (
        f"[magenta]{escape(x.type_name)}[/] step {escape(x.name)} (execution #{x.id}, "
        f"{_state(x.state.value)}) run {escape(str(p.get('run', '')))} params {params}{code_id}"
    )


def lineage_tree(
    ws: Workspace, artifact_id: int, direction: Literal["upstream", "downstream"]
) -> RenderableType:
    graph = md.lineage(ws.metadata, artifact_id, direction)
    root = graph.artifacts[artifact_id]
    tree = Tree(f"{_artifact_label(root)}  [dim]{direction}[/]")

    def grow(node: Tree, art_id: int, path: set[int]) -> None:
        execs = graph.producers(art_id) if direction == "upstream" else graph.consumers(art_id)
        for x_id in execs:
            x = graph.executions[x_id]
            branch = node.add(_execution_label(x))
            edges = graph.inputs_of(x_id) if direction == "upstream" else graph.outputs_of(x_id)
            for e in edges:
                a = graph.artifacts[e.artifact_id]
                leaf = branch.add(f"{escape(e.path)}: {_artifact_label(a)}")
                if e.artifact_id not in path:
                    grow(leaf, e.artifact_id, path | {e.artifact_id})

    grow(tree, artifact_id, {artifact_id})
    if len(graph.executions) == 0:
        tree.add(
            "[dim]nothing "
            + (
                "made it (an imported artifact)"
                if direction == "upstream"
                else "was made from it yet"
            )
            + "[/]"
        )
    return Group(tree)
