"""Components, pipelines, caching and runners."""

from __future__ import annotations

from kiln.orchestration._api import resume_command, run
from kiln.orchestration._cache import CacheKey, code_parts
from kiln.orchestration._component import Component, component
from kiln.orchestration._loader import load_pipeline
from kiln.orchestration._pipeline import OutputRef, Pipeline, Plan, Step, pipeline
from kiln.orchestration._run import (
    PIPELINE_CONTEXT,
    RUN_CONTEXT,
    RunResult,
    RunSession,
    StepEvent,
    StepResult,
)
from kiln.orchestration._runner import LocalRunner, Runner

__all__ = [
    "PIPELINE_CONTEXT",
    "RUN_CONTEXT",
    "CacheKey",
    "Component",
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
    "component",
    "load_pipeline",
    "pipeline",
    "resume_command",
    "run",
]
