"""Kiln: the whole machine-learning life cycle, on one laptop or a cluster.

The public API is re-exported here lazily, so that ``import kiln`` (and ``kiln --help``) stays
fast: the metadata store, Arrow and the pipeline machinery load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports
from kiln._version import __version__
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.artifacts import Artifact, ArtifactStore, Metrics, Report, Table
    from kiln.metadata import MetadataStore, lineage
    from kiln.model import Model
    from kiln.orchestration import (
        InputPath,
        LocalRunner,
        Pipeline,
        Runner,
        component,
        load_pipeline,
        pipeline,
        run,
    )
    from kiln.workspace import Workspace

__all__ = [
    "Artifact",
    "ArtifactStore",
    "InputPath",
    "KilnError",
    "LocalRunner",
    "MetadataStore",
    "Metrics",
    "Model",
    "Pipeline",
    "Report",
    "Runner",
    "Table",
    "Workspace",
    "__version__",
    "component",
    "lineage",
    "load_pipeline",
    "pipeline",
    "run",
]

_LAZY = {
    "Artifact": "kiln.artifacts",
    "ArtifactStore": "kiln.artifacts",
    "Metrics": "kiln.artifacts",
    "Report": "kiln.artifacts",
    "Table": "kiln.artifacts",
    "MetadataStore": "kiln.metadata",
    "Model": "kiln.model",
    "lineage": "kiln.metadata",
    "InputPath": "kiln.orchestration",
    "LocalRunner": "kiln.orchestration",
    "Pipeline": "kiln.orchestration",
    "Runner": "kiln.orchestration",
    "component": "kiln.orchestration",
    "load_pipeline": "kiln.orchestration",
    "pipeline": "kiln.orchestration",
    "run": "kiln.orchestration",
    "Workspace": "kiln.workspace",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
