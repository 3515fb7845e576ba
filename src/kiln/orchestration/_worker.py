"""Running one step's function: inputs in, outputs written to staging folders and fingerprinted.

The same :func:`execute_task` runs in the runner's process (``workers=0``, or a component that is
not importable by name) and in worker processes, which speak JSON lines on stdin/stdout::

    python -m kiln.orchestration._worker_main   # one task per line in, one result per line out

Only JSON crosses the process boundary — never pickles — and a step's prints and logs go to its
log file, not into the protocol.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.artifacts import artifact_class, fingerprint
from kiln.errors import KilnError
from kiln.orchestration._component import Component
from kiln.orchestration._loader import import_file

__all__ = ["StepContext", "execute_task", "resolve_component", "serve", "step_context"]


@dataclass(frozen=True)
class StepContext:
    """Where the running step is: its workspace, run and execution. For the few components that
    act on the workspace beyond their artifacts (the Pusher registers a model version)."""

    workspace: Path
    run: str
    step: str
    execution: int | None


_CONTEXT: ContextVar[StepContext | None] = ContextVar("kiln_step_context", default=None)


def step_context() -> StepContext | None:
    """The running step's :class:`StepContext`; ``None`` outside a pipeline step."""
    return _CONTEXT.get()


_loaded: dict[str, float] = {}  # module name -> mtime of the file it was loaded from


def resolve_component(module: str, file: str | None, qualname: str) -> Component:
    """The component object at ``module.qualname``, importing ``file`` when needed."""
    if file is not None:
        mtime = Path(file).stat().st_mtime
        if module not in sys.modules or _loaded.get(module) != mtime:
            import_file(Path(file), module)
            _loaded[module] = mtime
        mod: Any = sys.modules[module]
    else:
        import importlib

        mod = importlib.import_module(module)
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Component):
        raise TypeError(f"{module}.{qualname} is not a @component")
    return obj


def _user_traceback(exc: BaseException) -> str:
    """The traceback without Kiln's own frames above the component."""
    frames = traceback.extract_tb(exc.__traceback__)
    kiln_dir = str(Path(__file__).resolve().parent.parent)
    keep = [f for f in frames if not f.filename.startswith(kiln_dir)] or frames
    lines = traceback.format_list(keep) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def execute_task(task: dict[str, Any], comp: Component | None = None) -> dict[str, Any]:
    """Run one step. Never raises for the step's own errors: they come back as ``ok: false``."""
    start = time.perf_counter()
    try:
        if comp is None:
            comp = resolve_component(task["module"], task.get("file"), task["qualname"])
        kwargs: dict[str, Any] = dict(task["params"])
        for name, info in task["inputs"].items():
            cls = comp.inputs[name].artifact or artifact_class(info["type"])
            kwargs[name] = cls.stored(
                Path(info["path"]),
                id=info.get("id"),
                uri=info.get("uri"),
                fingerprint=info.get("fingerprint"),
                metadata=info.get("properties"),
            )
        where = task.get("context")
        token = _CONTEXT.set(
            StepContext(
                Path(where["workspace"]), where["run"], where["step"], where.get("execution")
            )
            if where
            else None
        )
        try:
            result = comp.fn(**kwargs)
        finally:
            _CONTEXT.reset(token)
        outputs = comp.split_outputs(result)
        written: dict[str, Any] = {}
        for name, art in outputs.items():
            folder = Path(task["outputs"][name])
            props = art.write(folder)
            written[name] = {"fingerprint": fingerprint(folder), "properties": props}
        return {
            "ok": True,
            "outputs": written,
            "duration_ms": int((time.perf_counter() - start) * 1000),
            "pid": os.getpid(),
        }
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt | SystemExit) and comp is None:
            raise
        return {
            "ok": False,
            "error": {
                "type": type(e).__name__,
                "message": str(e),
                # a KilnError is a message for the user (bad data, a bad setting): no traceback
                "traceback": "" if isinstance(e, KilnError) else _user_traceback(e),
            },
            "duration_ms": int((time.perf_counter() - start) * 1000),
            "pid": os.getpid(),
        }


@contextlib.contextmanager
def _fds_to(log_path: str | None) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to the step's log."""
    if not log_path:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def serve() -> None:
    proto = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", line_buffering=True)
    os.dup2(2, 1)  # stray prints outside a task go to stderr, never into the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        with _fds_to(task.get("log")):
            result = execute_task(task)
        result["task"] = task["task"]
        proto.write(json.dumps(result) + "\n")
