"""The data artifact types: Dataset, Statistics, Schema and Anomalies.

A ``Dataset`` folder holds one Parquet file per split and a manifest::

    manifest.json     {"splits": {"train": {"file": "train.parquet", "rows": 800}, ...},
                       "schema": {"column": "arrow type", ...}, "source": "...",
                       "source_fingerprint": "..."}
    train.parquet
    eval.parquet
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from kiln.artifacts._types import Artifact
from kiln.errors import ArtifactError
from kiln.metadata import PropertyType, PropertyValue

__all__ = ["Anomalies", "Dataset", "Schema", "Statistics"]


class Dataset(Artifact):
    """Named splits of one table, one Parquet file each: ``Dataset({"train": t, "eval": e})``."""

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "splits": PropertyType.JSON,
        "num_rows": PropertyType.INT,
        "source": PropertyType.STRING,
    }
    description: ClassVar[str] = "Dataset splits as Parquet files, with a manifest."
    source: str = ""
    source_fingerprint: str = ""

    def __init__(
        self, splits: Mapping[str, Any], *, source: str = "", fingerprint: str = ""
    ) -> None:
        super().__init__(dict(splits))
        self.source = source
        self.source_fingerprint = fingerprint

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        splits: dict[str, Any] = self._value
        if not splits or not all(isinstance(t, pa.Table) for t in splits.values()):
            raise ArtifactError("Dataset artifact needs a mapping of split name -> pyarrow.Table")
        manifest: dict[str, Any] = {"splits": {}, "source": self.source}
        manifest["source_fingerprint"] = self.source_fingerprint
        first = next(iter(splits.values()))
        manifest["schema"] = {f.name: str(f.type) for f in first.schema}
        for name, table in splits.items():
            if not name.isidentifier():
                raise ArtifactError(f"split name {name!r} must be a plain word (train, eval…)")
            pq.write_table(table, folder / f"{name}.parquet")
            manifest["splits"][name] = {"file": f"{name}.parquet", "rows": table.num_rows}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))  # keeps split order
        return {
            "splits": {n: s["rows"] for n, s in manifest["splits"].items()},
            "num_rows": sum(t.num_rows for t in splits.values()),
            "source": self.source,
        }

    def _read(self, folder: Path) -> Any:
        return {name: self.split(name) for name in self.split_names()}

    def manifest(self) -> dict[str, Any]:
        if self.path is None:
            raise ArtifactError("a pending Dataset has no manifest yet")
        data: dict[str, Any] = json.loads((self.path / "manifest.json").read_text())
        return data

    def split_names(self) -> list[str]:
        if self.path is None:
            return list(self._value)
        return list(self.manifest()["splits"])

    def split(self, name: str) -> Any:
        """One split as a pyarrow.Table."""
        if self.path is None:
            return self._value[name]
        import pyarrow.parquet as pq

        names = self.split_names()
        if name not in names:
            raise ArtifactError(f"Dataset has no split {name!r}; it has {', '.join(names)}")
        return pq.read_table(self.path / f"{name}.parquet")

    def split_path(self, name: str) -> Path:
        if self.path is None:
            raise ArtifactError("a pending Dataset has no files yet")
        return self.path / f"{name}.parquet"


class Statistics(Artifact):
    """Per-split feature statistics in Kiln's statistics JSON format (``statistics.json``)."""

    description: ClassVar[str] = "Feature statistics per dataset split."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        from kiln.data import Statistics as Stats

        if not isinstance(self._value, Stats):
            raise ArtifactError("Statistics artifact needs a kiln.data.Statistics")
        self._value.write(folder / "statistics.json")
        return {}

    def _read(self, folder: Path) -> Any:
        from kiln.data import Statistics as Stats

        return Stats.read(folder / "statistics.json")


class Schema(Artifact):
    """A data schema as human-editable YAML (``schema.yaml``)."""

    description: ClassVar[str] = "A data schema (types, presence, domains, comparators)."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        from kiln.data import Schema as DataSchema

        if not isinstance(self._value, DataSchema):
            raise ArtifactError("Schema artifact needs a kiln.data.Schema")
        (folder / "schema.yaml").write_text(self._value.to_yaml(), encoding="utf-8")
        return {}

    def _read(self, folder: Path) -> Any:
        from kiln.data import read_schema

        return read_schema(folder / "schema.yaml")


class Anomalies(Artifact):
    """What validation found (``anomalies.json``): TFDV's anomaly types, one entry each."""

    properties: ClassVar[Mapping[str, PropertyType]] = {"num_anomalies": PropertyType.INT}
    description: ClassVar[str] = "Data anomalies found by validation."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        items = [a.to_dict() for a in self._value]
        (folder / "anomalies.json").write_text(json.dumps({"anomalies": items}, indent=1))
        return {"num_anomalies": len(items)}

    def _read(self, folder: Path) -> Any:
        from kiln.data import Anomaly

        body = json.loads((folder / "anomalies.json").read_text())
        return [Anomaly(**a) for a in body["anomalies"]]
