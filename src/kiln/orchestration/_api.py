"""``kiln.run``: build a pipeline with parameters and run it in a workspace."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kiln.orchestration._pipeline import Pipeline, Plan
from kiln.orchestration._run import RunResult, RunSession, StepEvent
from kiln.orchestration._runner import LocalRunner, Runner
from kiln.workspace import Workspace

__all__ = ["resume_command", "run"]


def resume_command(file: Path, pipeline: str, params: Mapping[str, Any], several: bool) -> str:
    """The ``kiln run`` command line that reruns (and so resumes) a run with the same parameters."""
    import json

    parts = ["kiln", "run", str(file)]
    if several:
        parts += ["--pipeline", pipeline]
    for k, v in params.items():
        parts += ["--param", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return shlex.join(parts)


def run(
    pipeline: Pipeline | Plan,
    params: Mapping[str, Any] | None = None,
    *,
    workspace: Workspace | str | Path | None = None,
    runner: Runner | None = None,
    use_cache: bool = True,
    listener: Callable[[StepEvent], None] | None = None,
    file: Path | None = None,
    command: str | None = None,
    raise_on_failure: bool = True,
    trigger: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run a pipeline (or a built plan) and record it; returns what each step did.

    ``workspace`` defaults to the one found from the current directory (created when missing).
    A failed step raises :class:`~kiln.errors.RunFailedError` unless ``raise_on_failure=False``;
    running again with the same parameters resumes: completed steps come from the cache.
    ``trigger`` says why it ran (``{"kind": "schedule", ...}``); it is kept on the run's context.
    """
    plan = pipeline if isinstance(pipeline, Plan) else pipeline.build(**dict(params or {}))
    if isinstance(workspace, Workspace):
        ws = workspace
    elif workspace is not None:
        ws, _ = Workspace.init(Path(workspace))
    else:
        ws = Workspace.find_or_create()
    if command is None:
        fn_file = (
            Path(getattr(pipeline, "fn", run).__code__.co_filename)
            if isinstance(pipeline, Pipeline)
            else None
        )
        command = resume_command(
            file or fn_file or Path("PIPELINE.py"), plan.pipeline, plan.params, False
        )
    session = RunSession(
        ws,
        plan,
        use_cache=use_cache,
        file=file,
        command=command,
        listener=listener,
        trigger=trigger,
    )
    try:
        (runner or LocalRunner()).run(plan, session)
    finally:
        result = session.finish()
    return result.check() if raise_on_failure else result
