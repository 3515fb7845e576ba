"""Artifacts: typed, immutable, fingerprinted folders under the artifact root."""

from __future__ import annotations

from kiln.artifacts._data import Anomalies, Dataset, Schema, Statistics
from kiln.artifacts._model import (
    HyperParameters,
    InfraBlessing,
    Model,
    ModelEvaluation,
    PushedModel,
    TransformGraph,
)
from kiln.artifacts._store import ArtifactStore, check_uri, fingerprint
from kiln.artifacts._types import (
    MANIFEST,
    Artifact,
    Metrics,
    Report,
    Table,
    artifact_class,
    artifact_classes,
)

__all__ = [
    "MANIFEST",
    "Anomalies",
    "Artifact",
    "ArtifactStore",
    "Dataset",
    "HyperParameters",
    "InfraBlessing",
    "Metrics",
    "Model",
    "ModelEvaluation",
    "PushedModel",
    "Report",
    "Schema",
    "Statistics",
    "Table",
    "TransformGraph",
    "artifact_class",
    "artifact_classes",
    "check_uri",
    "fingerprint",
]
