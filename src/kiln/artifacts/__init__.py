"""Artifacts: typed, immutable, fingerprinted folders under the artifact root."""

from __future__ import annotations

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
    "Artifact",
    "ArtifactStore",
    "Metrics",
    "Report",
    "Table",
    "artifact_class",
    "artifact_classes",
    "check_uri",
    "fingerprint",
]
