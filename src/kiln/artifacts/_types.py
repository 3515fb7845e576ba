"""Artifact types: a name, a format version, declared properties, and how to (de)serialise.

An artifact instance is either *pending* — it holds a value a component produced and has not been
written yet — or *stored* — it points at its published folder (``.path``) and knows its metadata id
and fingerprint. Components return pending artifacts and receive stored ones; ``read()`` gives the
value in both cases, so a component can be called as a plain function in a test.

Every stored artifact folder holds ``kiln-artifact.json`` (type and format version), so a folder
says what it is even without the metadata database.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from kiln.errors import ArtifactError
from kiln.metadata import PropertyType, PropertyValue

__all__ = ["Artifact", "Metrics", "Report", "Table", "artifact_class", "artifact_classes"]

MANIFEST = "kiln-artifact.json"
_REGISTRY: dict[str, type[Artifact]] = {}
_USER = "kiln_user_"  # the module-name prefix of pipeline files loaded by path


class Artifact:
    """The generic artifact: a folder of files. Subclasses give it a format.

    ``Artifact(path_to_file_or_folder)`` copies that file or folder in when the artifact is written.
    """

    type_name: ClassVar[str] = "Artifact"
    version: ClassVar[int] = 1
    properties: ClassVar[Mapping[str, PropertyType]] = {}
    description: ClassVar[str] = "A folder of files."

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__
        existing = _REGISTRY.get(cls.type_name)
        # A pipeline file loaded again (or another pipeline file, in one notebook or test
        # session) may redefine its own types; nothing may take over a name an importable
        # module owns, such as Kiln's own Table.
        redefined = existing is not None and (
            (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
            or (existing.__module__.startswith(_USER) and cls.__module__.startswith(_USER))
        )
        if existing is not None and not redefined:
            raise ArtifactError(
                f"artifact type name {cls.type_name!r} is taken by {existing.__module__}."
                f"{existing.__qualname__}; give {cls.__qualname__} another type_name"
            )
        _REGISTRY[cls.type_name] = cls

    def __init__(self, value: Any = None) -> None:
        self._value = value
        self.path: Path | None = None
        self.id: int | None = None
        self.uri: str | None = None
        self.fingerprint: str | None = None
        self.metadata: dict[str, PropertyValue] = {}

    @classmethod
    def stored(
        cls,
        path: Path,
        *,
        id: int | None = None,
        uri: str | None = None,
        fingerprint: str | None = None,
        metadata: Mapping[str, PropertyValue] | None = None,
    ) -> Self:
        """The artifact published at ``path``."""
        obj = cls.__new__(cls)
        Artifact.__init__(obj)
        obj.path, obj.id, obj.uri, obj.fingerprint = path, id, uri, fingerprint
        obj.metadata = dict(metadata or {})
        return obj

    @property
    def is_stored(self) -> bool:
        return self.path is not None

    def read(self) -> Any:
        """The artifact's value: from memory when pending, from its files when stored."""
        if self.path is None:
            return self._value
        return self._read(self.path)

    def write(self, folder: Path) -> dict[str, PropertyValue]:
        """Serialise into an empty ``folder``; returns the properties to record in the metadata."""
        if self.path is not None:
            shutil.copytree(self.path, folder, dirs_exist_ok=True)
            return dict(self.metadata)
        props = self._write(folder)
        (folder / MANIFEST).write_text(
            json.dumps({"type": self.type_name, "version": self.version}, sort_keys=True)
        )
        return props

    # -- the two methods a type overrides

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        src = Path(self._value) if self._value is not None else None
        if src is None or not src.exists():
            raise ArtifactError(
                f"{self.type_name} artifact needs an existing file or folder to store, got "
                f"{self._value!r}"
            )
        if src.is_dir():
            shutil.copytree(src, folder, dirs_exist_ok=True)
        else:
            shutil.copy2(src, folder / src.name)
        return {}

    def _read(self, folder: Path) -> Any:
        return folder

    def __repr__(self) -> str:
        where = f"id={self.id} path={self.path}" if self.path else "pending"
        return f"<{self.type_name} {where}>"


class Table(Artifact):
    """A table: an Arrow table stored as one Parquet file (``data.parquet``)."""

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "num_rows": PropertyType.INT,
        "num_columns": PropertyType.INT,
        "columns": PropertyType.JSON,
    }
    description: ClassVar[str] = "An Arrow table stored as Parquet."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = self._value
        if not isinstance(table, pa.Table):
            raise ArtifactError(f"Table artifact needs a pyarrow.Table, got {type(table).__name__}")
        pq.write_table(table, folder / "data.parquet")
        return {
            "num_rows": table.num_rows,
            "num_columns": table.num_columns,
            "columns": {f.name: str(f.type) for f in table.schema},
        }

    def _read(self, folder: Path) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(folder / "data.parquet")


class Metrics(Artifact):
    """Named numbers (and nested JSON), stored as ``metrics.json``."""

    description: ClassVar[str] = "Named values as JSON."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        value = self._value
        if not isinstance(value, Mapping):
            raise ArtifactError(f"Metrics artifact needs a mapping, got {type(value).__name__}")
        try:
            text = json.dumps(value, sort_keys=True, indent=2, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ArtifactError(
                f"Metrics artifact is not strict JSON ({e}); use None for a value that is "
                "undefined (NaN) or infinite"
            ) from e
        (folder / "metrics.json").write_text(text)
        return {}

    def _read(self, folder: Path) -> Any:
        return json.loads((folder / "metrics.json").read_text())


class Report(Artifact):
    """A self-contained HTML page (``index.html``): no CDN, opens offline."""

    description: ClassVar[str] = "A self-contained HTML report."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        if not isinstance(self._value, str):
            raise ArtifactError(
                f"Report artifact needs HTML text, got {type(self._value).__name__}"
            )
        (folder / "index.html").write_text(self._value, encoding="utf-8")
        return {}

    def _read(self, folder: Path) -> Any:
        return (folder / "index.html").read_text(encoding="utf-8")


def artifact_class(type_name: str) -> type[Artifact]:
    """The class registered for a type name (the generic :class:`Artifact` when none is)."""
    return _REGISTRY.get(type_name, Artifact)


def artifact_classes() -> dict[str, type[Artifact]]:
    return {"Artifact": Artifact, **_REGISTRY}
