"""Cleaning up after crashes: what a killed run leaves behind, made consistent again.

A run killed with ``kill -9`` (or a machine that lost power) leaves its run context RUNNING, the
step it was running RUNNING with PENDING outputs, maybe a staging folder, and maybe a published
folder that the metadata never marked LIVE. None of it is visible — nothing reads a PENDING
artifact — but it takes room and reads oddly in ``kiln runs``. :func:`collect_garbage`:

- marks runs whose process is gone (same host, dead pid) ABORTED, their RUNNING executions FAILED
  and those executions' PENDING outputs DELETED;
- removes staging folders older than ``older_than_s``;
- removes folders under the artifact root that no LIVE or PENDING artifact points at, once older
  than ``older_than_s`` (a younger one may belong to a step being published right now).

Runs on other hosts are left alone: their process cannot be checked from here.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from kiln import metadata as md
from kiln.errors import NotFoundError
from kiln.orchestration._run import RUN_CONTEXT
from kiln.workspace import Workspace

__all__ = ["GarbageReport", "collect_garbage", "process_alive"]


@dataclass
class GarbageReport:
    aborted_runs: list[str] = field(default_factory=list)
    failed_executions: int = 0
    deleted_pending: int = 0
    staging_removed: int = 0
    orphans_removed: list[str] = field(default_factory=list)


def process_alive(props: dict[str, md.PropertyValue]) -> bool | None:
    """Whether the run's process lives: None when it ran on another host (cannot tell)."""
    pid = props.get("pid")
    if props.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_garbage(
    ws: Workspace, *, older_than_s: float = 3600.0, dry_run: bool = False
) -> GarbageReport:
    """Make a workspace consistent after crashes; with ``dry_run``, only say what would change."""
    report = GarbageReport()
    _abort_dead_runs(ws.metadata, report, dry_run)
    if ws.artifacts.is_local:
        if not dry_run:
            report.staging_removed = ws.artifacts.collect_garbage(older_than_s)
        _remove_orphans(ws, report, older_than_s, dry_run)
    return report


def _abort_dead_runs(store: md.MetadataStore, report: GarbageReport, dry_run: bool) -> None:
    try:
        runs = store.get_contexts(type_name=RUN_CONTEXT)
    except NotFoundError:  # no run was ever recorded here
        return
    for run in runs:
        if run.properties.get("state") != "RUNNING" or process_alive(run.properties) is not False:
            continue
        report.aborted_runs.append(run.name)
        for x in store.get_executions(context_id=run.id, state=md.ExecutionState.RUNNING):
            assert x.id is not None
            report.failed_executions += 1
            pending = {
                name: [a for a in arts if a.state == md.ArtifactState.PENDING]
                for name, arts in store.get_outputs(x.id).items()
            }
            report.deleted_pending += sum(len(v) for v in pending.values())
            if dry_run:
                continue
            for arts in pending.values():
                for a in arts:
                    a.state = md.ArtifactState.DELETED
            x.state = md.ExecutionState.FAILED
            x.properties["error"] = (
                f"aborted: the run's process (pid {run.properties.get('pid')}) ended without "
                "recording this step"
            )
            store.put_execution(x, outputs=pending)
        if not dry_run:
            run.properties.update(state="ABORTED", end_ms=md.now_ms())
            store.put_context(run)


def _remove_orphans(
    ws: Workspace, report: GarbageReport, older_than_s: float, dry_run: bool
) -> None:
    root = ws.artifacts.local_root
    if not root.exists():
        return
    keep = ws.metadata.get_artifact_uris([md.ArtifactState.LIVE, md.ArtifactState.PENDING])
    cutoff = time.time() - older_than_s
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted(type_dir.iterdir()):
            uri = f"{type_dir.name}/{folder.name}"
            if uri in keep or folder.stat().st_mtime >= cutoff:
                continue
            report.orphans_removed.append(uri)
            if not dry_run:
                ws.artifacts.delete(uri)
