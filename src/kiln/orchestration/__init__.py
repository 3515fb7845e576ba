"""Components, pipelines, caching and runners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.orchestration._api import (
        resume_command,
        run,
    )
    from kiln.orchestration._cache import (
        CacheKey,
        code_parts,
        path_fingerprint,
    )
    from kiln.orchestration._component import (
        Component,
        InputPath,
        component,
    )
    from kiln.orchestration._gc import (
        GarbageReport,
        collect_garbage,
    )
    from kiln.orchestration._loader import (
        load_pipeline,
    )
    from kiln.orchestration._pipeline import (
        OutputRef,
        Pipeline,
        Plan,
        Step,
        pipeline,
    )
    from kiln.orchestration._run import (
        PIPELINE_CONTEXT,
        RUN_CONTEXT,
        RunResult,
        RunSession,
        StepEvent,
        StepResult,
    )
    from kiln.orchestration._runner import (
        LocalRunner,
        Runner,
    )
    from kiln.orchestration._triggers import (
        FolderWatcher,
        PipelineBusyError,
        PipelineLock,
        Ticker,
        TriggerError,
        parse_interval,
    )
    from kiln.orchestration._worker import StepContext, step_context

__all__ = [
    "PIPELINE_CONTEXT",
    "RUN_CONTEXT",
    "CacheKey",
    "Component",
    "FolderWatcher",
    "GarbageReport",
    "InputPath",
    "LocalRunner",
    "OutputRef",
    "Pipeline",
    "PipelineBusyError",
    "PipelineLock",
    "Plan",
    "RunResult",
    "RunSession",
    "Runner",
    "Step",
    "StepContext",
    "StepEvent",
    "StepResult",
    "Ticker",
    "TriggerError",
    "code_parts",
    "collect_garbage",
    "component",
    "load_pipeline",
    "parse_interval",
    "path_fingerprint",
    "pipeline",
    "resume_command",
    "run",
    "step_context",
]

_EXPORTS = {
    "resume_command": "kiln.orchestration._api",
    "run": "kiln.orchestration._api",
    "CacheKey": "kiln.orchestration._cache",
    "code_parts": "kiln.orchestration._cache",
    "path_fingerprint": "kiln.orchestration._cache",
    "Component": "kiln.orchestration._component",
    "GarbageReport": "kiln.orchestration._gc",
    "collect_garbage": "kiln.orchestration._gc",
    "InputPath": "kiln.orchestration._component",
    "component": "kiln.orchestration._component",
    "load_pipeline": "kiln.orchestration._loader",
    "OutputRef": "kiln.orchestration._pipeline",
    "Pipeline": "kiln.orchestration._pipeline",
    "Plan": "kiln.orchestration._pipeline",
    "Step": "kiln.orchestration._pipeline",
    "pipeline": "kiln.orchestration._pipeline",
    "PIPELINE_CONTEXT": "kiln.orchestration._run",
    "RUN_CONTEXT": "kiln.orchestration._run",
    "RunResult": "kiln.orchestration._run",
    "RunSession": "kiln.orchestration._run",
    "StepEvent": "kiln.orchestration._run",
    "StepResult": "kiln.orchestration._run",
    "StepContext": "kiln.orchestration._worker",
    "step_context": "kiln.orchestration._worker",
    "LocalRunner": "kiln.orchestration._runner",
    "Runner": "kiln.orchestration._runner",
    "FolderWatcher": "kiln.orchestration._triggers",
    "PipelineBusyError": "kiln.orchestration._triggers",
    "PipelineLock": "kiln.orchestration._triggers",
    "Ticker": "kiln.orchestration._triggers",
    "TriggerError": "kiln.orchestration._triggers",
    "parse_interval": "kiln.orchestration._triggers",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
