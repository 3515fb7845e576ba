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

__all__ = [
    "PIPELINE_CONTEXT",
    "RUN_CONTEXT",
    "CacheKey",
    "Component",
    "GarbageReport",
    "InputPath",
    "LocalRunner",
    "OutputRef",
    "Pipeline",
    "Plan",
    "RunResult",
    "RunSession",
    "Runner",
    "Step",
    "StepEvent",
    "StepResult",
    "code_parts",
    "collect_garbage",
    "component",
    "load_pipeline",
    "path_fingerprint",
    "pipeline",
    "resume_command",
    "run",
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
    "LocalRunner": "kiln.orchestration._runner",
    "Runner": "kiln.orchestration._runner",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
