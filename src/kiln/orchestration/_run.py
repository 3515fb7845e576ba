"""One pipeline run: the run's context in the metadata, and each step's way through it.

A step is *prepared* (inputs resolved, cache key computed; a cache hit is recorded as a CACHED
execution and the step is done), *executed* by a runner, then *completed* (outputs published and
marked LIVE, execution COMPLETE, in one metadata transaction) or *failed*. The runner decides only
where and when steps execute; everything written to the metadata is written here, so every runner
records runs the same way.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kiln import metadata as md
from kiln.artifacts import Artifact, artifact_classes
from kiln.errors import KilnError, MetadataLockedError, RunFailedError
from kiln.orchestration._cache import CacheKey, code_parts, explain_miss, path_fingerprint
from kiln.orchestration._pipeline import Plan, Step
from kiln.workspace import Workspace

__all__ = [
    "PIPELINE_CONTEXT",
    "RUN_CONTEXT",
    "RunResult",
    "RunSession",
    "StepEvent",
    "StepResult",
    "Task",
]

PIPELINE_CONTEXT = "kiln.Pipeline"
RUN_CONTEXT = "kiln.PipelineRun"
P = md.PropertyType
_EXECUTION_PROPERTIES = {
    "step": P.STRING,
    "pipeline": P.STRING,
    "run": P.STRING,
    "params": P.JSON,
    "code_parts": P.JSON,
    "input_fingerprints": P.JSON,
    "kiln_version": P.STRING,
    "cache_reason": P.STRING,
    "cached_from": P.INT,
    "start_ms": P.INT,
    "end_ms": P.INT,
    "duration_ms": P.INT,
    "error": P.STRING,
    "log": P.STRING,
    "pid": P.INT,
}
_RUN_PROPERTIES = {
    "pipeline": P.STRING,
    "state": P.STRING,
    "params": P.JSON,
    "file": P.STRING,
    "command": P.STRING,
    "start_ms": P.INT,
    "end_ms": P.INT,
    "steps": P.JSON,
    "error": P.STRING,
    "host": P.STRING,
    "pid": P.INT,
    "trigger": P.JSON,  # why it ran: {"kind": "manual" | "schedule" | "new_data", ...}
}

StepState = Literal["COMPLETE", "CACHED", "FAILED", "SKIPPED", "RUNNING"]


@dataclass
class StepResult:
    name: str
    component: str
    state: StepState
    reason: str = ""
    execution_id: int | None = None
    duration_ms: int = 0
    outputs: dict[str, md.Artifact] = field(default_factory=dict)
    error: str | None = None
    log: str | None = None


@dataclass
class StepEvent:
    """What a progress display is told: a step started, hit the cache, finished or failed."""

    kind: Literal["start", "hit", "done", "failed"]
    step: StepResult
    total: int


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    state: Literal["COMPLETE", "FAILED"]
    steps: dict[str, StepResult]
    resume_command: str
    duration_ms: int

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps.values() if s.state == "FAILED"), None)

    def check(self) -> RunResult:
        """``self`` when the run completed; :class:`RunFailedError` when a step failed."""
        bad = self.failed_step
        if bad is not None:
            raise RunFailedError(
                f"step {bad.name!r} ({bad.component}) failed: {bad.error}",
                run_id=self.run_id,
                step=bad.name,
                resume_command=self.resume_command,
            )
        return self

    def output(self, step: str, name: str = "output") -> md.Artifact:
        return self.steps[step].outputs[name]


@dataclass
class Task:
    """A prepared step for a runner: the JSON a worker needs, and what to publish after it."""

    step: Step
    payload: dict[str, Any]
    staged: dict[str, Path]
    execution: md.Execution
    outputs: dict[str, md.Artifact]
    key: CacheKey


class RunSession:
    """Everything a run writes to the metadata and the artifact store."""

    def __init__(
        self,
        workspace: Workspace,
        plan: Plan,
        *,
        use_cache: bool = True,
        file: Path | None = None,
        command: str = "",
        listener: Callable[[StepEvent], None] | None = None,
        trigger: Mapping[str, Any] | None = None,
    ) -> None:
        self.ws = workspace
        self.trigger = dict(trigger or {})
        self.store = workspace.metadata
        self.artifacts = workspace.artifacts
        self.plan = plan
        self.use_cache = use_cache
        self.file = file
        self.command = command
        self.listener = listener
        self.results: dict[str, StepResult] = {
            s.name: StepResult(s.name, s.component.name, "SKIPPED") for s in plan.steps
        }
        self._produced: dict[tuple[str, str], md.Artifact] = {}
        self._code: dict[int, dict[str, str]] = {}
        self._start = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._start))
        self.run_id = f"{plan.pipeline}-{stamp}-{secrets.token_hex(2)}"
        self.log_dir = workspace.logs_dir / self.run_id
        self._open()

    # ------------------------------------------------------------------ run context

    def _open(self) -> None:
        self.artifacts.check_writable()
        s = self.store
        s.put_context_type(PIPELINE_CONTEXT, {"file": P.STRING})
        s.put_context_type(RUN_CONTEXT, _RUN_PROPERTIES)
        for component in {step.component.name for step in self.plan.steps}:
            s.put_execution_type(component, _EXECUTION_PROPERTIES)
        used = {o.artifact for st in self.plan.steps for o in st.component.outputs.values()}
        used |= {
            i.artifact for st in self.plan.steps for i in st.component.inputs.values() if i.artifact
        }
        for cls in used:
            s.put_artifact_type(
                cls.type_name, cls.properties, version=str(cls.version), description=cls.description
            )
        self.pipeline_ctx = s.put_context(
            md.Context(PIPELINE_CONTEXT, self.plan.pipeline, {"file": str(self.file or "")})
        )
        self.run_ctx = s.put_context(
            md.Context(
                RUN_CONTEXT,
                self.run_id,
                {
                    "pipeline": self.plan.pipeline,
                    "state": "RUNNING",
                    "params": self.plan.params,
                    "file": str(self.file or ""),
                    "command": self.command,
                    "start_ms": int(self._start * 1000),
                    "steps": [st.name for st in self.plan.steps],
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    **({"trigger": self.trigger} if self.trigger else {}),
                },
            )
        )
        self.contexts = [self.pipeline_ctx, self.run_ctx]

    def finish(self) -> RunResult:
        failed = any(r.state == "FAILED" for r in self.results.values())
        state: Literal["COMPLETE", "FAILED"] = "FAILED" if failed else "COMPLETE"
        self.run_ctx.properties.update(state=state, end_ms=md.now_ms())
        if failed:
            bad = next(r for r in self.results.values() if r.state == "FAILED")
            self.run_ctx.properties["error"] = f"step {bad.name}: {bad.error}"
        self.store.put_context(self.run_ctx)
        return RunResult(
            run_id=self.run_id,
            pipeline=self.plan.pipeline,
            state=state,
            steps=self.results,
            resume_command=self.command,
            duration_ms=int((time.time() - self._start) * 1000),
        )

    def _emit(self, kind: Literal["start", "hit", "done", "failed"], result: StepResult) -> None:
        if self.listener is not None:
            self.listener(StepEvent(kind, result, len(self.plan.steps)))

    # ------------------------------------------------------------------ steps

    def _inputs(self, step: Step) -> dict[str, md.Artifact]:
        return {
            name: self._produced[(ref.step.name, ref.name)]
            for name, ref in step.artifact_inputs.items()
        }

    def _previous(self, step: Step) -> md.Execution | None:
        for x in self.store.get_executions(
            type_name=step.component.name, context_id=self.pipeline_ctx.id, limit=50
        ):
            if x.properties.get("step") == step.name:
                return x
        return None

    def _code_parts(self, step: Step) -> dict[str, str]:
        key = id(step.component)
        if key not in self._code:
            self._code[key] = code_parts(step.component.fn)
        return self._code[key]

    def prepare(self, step: Step) -> Task | None:
        """Resolve a step; ``None`` when the cache answered it, else a :class:`Task` to execute."""
        inputs = self._inputs(step)
        key = CacheKey(
            component=step.component.name,
            code=self._code_parts(step),
            params=step.params,
            inputs={
                **{n: [a.fingerprint or ""] for n, a in inputs.items()},
                **{
                    f"file:{spec.name}": [path_fingerprint(str(step.params.get(spec.name, "")))]
                    for spec in step.component.inputs.values()
                    if spec.watched
                },
            },
        )
        digest = key.digest
        base = {
            "step": step.name,
            "pipeline": self.plan.pipeline,
            "run": self.run_id,
            **key.as_properties(),
        }
        hit = self.store.find_cached_execution(digest) if self.use_cache else None
        if hit is not None and all(
            self.artifacts.exists(a.uri) for arts in hit[1].values() for a in arts
        ):
            original, reused = hit
            now = md.now_ms()
            reason = f"hit: same code, parameters and inputs as execution {original.id}"
            execution = md.Execution(
                step.component.name,
                name=step.name,
                state=md.ExecutionState.CACHED,
                cache_key=digest,
                properties={
                    **base,
                    "cache_reason": reason,
                    "cached_from": original.id,
                    "start_ms": now,
                    "end_ms": now,
                    "duration_ms": 0,
                },
            )
            self.store.put_execution(
                execution,
                inputs={n: [a] for n, a in inputs.items()},
                outputs=reused,
                contexts=self.contexts,
                update_outputs=False,
            )
            res = self.results[step.name]
            res.state, res.reason, res.execution_id = "CACHED", reason, execution.id
            res.outputs = {n: arts[0] for n, arts in reused.items()}
            for n, arts in reused.items():
                self._produced[(step.name, n)] = arts[0]
            self._emit("hit", res)
            return None

        reason = (
            "miss: --no-cache" if not self.use_cache else explain_miss(key, self._previous(step))
        )
        outputs = {
            name: md.Artifact(
                spec.artifact.type_name, self.artifacts.new_uri(spec.artifact.type_name)
            )
            for name, spec in step.component.outputs.items()
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{step.name}.log"
        execution = md.Execution(
            step.component.name,
            name=step.name,
            state=md.ExecutionState.RUNNING,
            cache_key=digest,
            properties={**base, "cache_reason": reason, "start_ms": md.now_ms(), "log": str(log)},
        )
        self.store.put_execution(
            execution,
            inputs={n: [a] for n, a in inputs.items()},
            outputs={n: [a] for n, a in outputs.items()},
            contexts=self.contexts,
        )
        staged = {name: self.artifacts.staging_dir() for name in outputs}
        fn = step.component.fn
        module = sys.modules.get(fn.__module__)
        payload = {
            "module": fn.__module__,
            "file": getattr(module, "__file__", None)
            if fn.__module__.startswith("kiln_user_")
            else None,
            "qualname": _component_qualname(step),
            "params": step.params,
            "inputs": {
                n: {
                    "type": a.type_name,
                    "path": str(self.artifacts.path_of(a.uri)),
                    "id": a.id,
                    "uri": a.uri,
                    "fingerprint": a.fingerprint,
                    "properties": a.properties,
                }
                for n, a in inputs.items()
            },
            "outputs": {n: str(p) for n, p in staged.items()},
            "log": str(log),
            "context": {
                "workspace": str(self.ws.root),
                "run": self.run_id,
                "step": step.name,
                "execution": execution.id,
            },
        }
        res = self.results[step.name]
        res.state, res.reason, res.execution_id, res.log = "RUNNING", reason, execution.id, str(log)
        self._emit("start", res)
        return Task(step, payload, staged, execution, outputs, key)

    def complete(self, task: Task, result: dict[str, Any]) -> None:
        """Record a step's outcome: publish and mark LIVE, or mark FAILED; never raises for it."""
        if not result.get("ok"):
            err = result.get("error", {})
            self.fail(
                task,
                f"{err.get('type', 'Error')}: {err.get('message', '')}",
                err.get("traceback", ""),
                result,
            )
            return
        try:
            for name, art in task.outputs.items():
                info = result["outputs"][name]
                self.artifacts.publish(task.staged[name], art.uri)
                art.state = md.ArtifactState.LIVE
                art.fingerprint = info["fingerprint"]
                art.properties = dict(info["properties"])
                art.custom_properties = {"format_version": _class_version(art.type_name)}
            end = md.now_ms()
            x = task.execution
            x.state = md.ExecutionState.COMPLETE
            x.properties.update(
                end_ms=end, duration_ms=result.get("duration_ms", 0), pid=result.get("pid")
            )
            self.store.put_execution(
                x,
                outputs={n: [a] for n, a in task.outputs.items()},
                contexts=self.contexts,
            )
        except MetadataLockedError:
            raise  # the database, not the step: the run cannot record anything more
        except (KilnError, OSError) as e:
            # e.g. an output property of the wrong type: the step's fault, so the step fails
            self.fail(task, f"{type(e).__name__}: {e}", "", result)
            return
        res = self.results[task.step.name]
        res.state, res.duration_ms = "COMPLETE", int(result.get("duration_ms", 0))
        res.outputs = dict(task.outputs)
        for n, a in task.outputs.items():
            self._produced[(task.step.name, n)] = a
        self._emit("done", res)

    def fail(
        self, task: Task, message: str, trace: str = "", result: dict[str, Any] | None = None
    ) -> None:
        for path in task.staged.values():
            shutil.rmtree(path, ignore_errors=True)
        for art in task.outputs.values():
            if art.state == md.ArtifactState.LIVE:  # published before the failure: take it back
                self.artifacts.delete(art.uri)
            art.state = md.ArtifactState.DELETED
            art.properties, art.custom_properties = {}, {}
        x = task.execution
        x.state = md.ExecutionState.FAILED
        x.properties.update(
            end_ms=md.now_ms(), error=(message + ("\n" + trace if trace else ""))[:20000]
        )
        if result:
            x.properties.update(duration_ms=result.get("duration_ms", 0), pid=result.get("pid"))
        self.store.put_execution(
            x, outputs={n: [a] for n, a in task.outputs.items()}, contexts=self.contexts
        )
        res = self.results[task.step.name]
        res.state, res.error = "FAILED", message
        if trace:
            res.error = f"{message}\n{trace.rstrip()}"
        self._emit("failed", res)


def _class_version(type_name: str) -> int:
    cls = artifact_classes().get(type_name, Artifact)
    return cls.version


def _component_qualname(step: Step) -> str:
    """The attribute path of the component in its module, or '' when it is not reachable by name."""
    fn = step.component.fn
    module = sys.modules.get(fn.__module__)
    qual = fn.__qualname__
    obj: Any = module
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if obj is step.component:
        return qual
    for name, value in vars(module or object()).items():
        if value is step.component:
            return str(name)
    return ""


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )
