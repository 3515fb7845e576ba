"""The workspace: a folder with ``kiln.toml`` and ``.kiln/`` holding the metadata and artifacts.

Commands find it from ``KILN_HOME`` when set, else by walking up from the current directory to
the first folder with a ``kiln.toml``. A command that needs one and finds none creates it in the
current directory, with a one-line notice.

Settings, lowest to highest precedence: the defaults, ``kiln.toml``'s ``[workspace]`` table, then
environment variables::

    metadata_url   KILN_METADATA_URL            sqlite:///<workspace>/.kiln/metadata.db
    artifact_root  KILN_ARTIFACT_ROOT           <workspace>/.kiln/artifacts
    busy_timeout   KILN_METADATA_BUSY_TIMEOUT   30 (seconds a write waits for a locked database)

Relative paths in ``kiln.toml`` (``sqlite:///.kiln/metadata.db``, ``artifacts``) are taken relative
to the workspace folder.
"""

from __future__ import annotations

import math
import os
import sys
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import WorkspaceError

if TYPE_CHECKING:
    from kiln.artifacts import ArtifactStore
    from kiln.metadata import MetadataStore

__all__ = ["CONFIG_FILE", "Settings", "Workspace"]

CONFIG_FILE = "kiln.toml"
STATE_DIR = ".kiln"
_TEMPLATE = """\
# Kiln workspace. Environment variables override these settings
# (KILN_METADATA_URL, KILN_ARTIFACT_ROOT, KILN_METADATA_BUSY_TIMEOUT).
[workspace]
# Any SQLAlchemy URL: sqlite:///path (relative to this folder) or postgresql+psycopg://user@host/db
metadata_url = "sqlite:///.kiln/metadata.db"
# A folder (relative to this one) or any fsspec URL such as s3://bucket/kiln
artifact_root = ".kiln/artifacts"
# Seconds a write waits for another process holding the metadata database
busy_timeout = 30
"""
_KEYS = {
    "metadata_url": ("KILN_METADATA_URL", str),
    "artifact_root": ("KILN_ARTIFACT_ROOT", str),
    "busy_timeout": ("KILN_METADATA_BUSY_TIMEOUT", float),
}


@dataclass(frozen=True)
class Settings:
    metadata_url: str
    artifact_root: str
    busy_timeout: float


class Workspace:
    """A Kiln workspace folder: its settings, metadata store and artifact store."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # ------------------------------------------------------------------ finding and creating

    @classmethod
    def init(cls, directory: Path) -> tuple[Workspace, bool]:
        """Make ``directory`` a workspace; returns it and whether anything was created."""
        directory = directory.expanduser()
        config = directory / CONFIG_FILE
        created = not config.exists()
        try:
            (directory / STATE_DIR).mkdir(parents=True, exist_ok=True)
            if created:
                config.write_text(_TEMPLATE)
        except OSError as e:
            raise WorkspaceError(
                f"cannot create a workspace in {directory}: {e.strerror}. "
                "Choose a folder you can write to (kiln init DIR)."
            ) from e
        return cls(directory), created

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace | None:
        """The workspace from ``KILN_HOME``, or the nearest folder upwards with a kiln.toml."""
        home = os.environ.get("KILN_HOME")
        if home:
            path = Path(home).expanduser()
            if not (path / CONFIG_FILE).is_file():
                raise WorkspaceError(
                    f"KILN_HOME={home} has no {CONFIG_FILE}; run `kiln init {home}` or unset "
                    "KILN_HOME"
                )
            return cls(path)
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                return cls(folder)
        return None

    @classmethod
    def find_or_create(cls, start: Path | None = None, *, notice: bool = True) -> Workspace:
        found = cls.find(start)
        if found is not None:
            return found
        ws, _ = cls.init(start or Path.cwd())
        if notice:
            sys.stderr.write(
                f"kiln: no workspace found; created one in {ws.root} "
                f"({CONFIG_FILE}, {STATE_DIR}/)\n"
            )
        return ws

    # ------------------------------------------------------------------ settings

    @cached_property
    def settings(self) -> Settings:
        config = self.root / CONFIG_FILE
        try:
            data = tomllib.loads(config.read_text()) if config.exists() else {}
        except (tomllib.TOMLDecodeError, OSError) as e:
            raise WorkspaceError(f"{config} is not valid TOML: {e}. Fix the file.") from e
        section: dict[str, Any] = data.get("workspace", {})
        unknown = set(section) - set(_KEYS)
        if unknown:
            raise WorkspaceError(
                f"{config}: unknown setting(s) {', '.join(sorted(unknown))} in [workspace]; "
                f"known: {', '.join(_KEYS)}"
            )
        values: dict[str, Any] = {
            "metadata_url": f"sqlite:///{self.root / STATE_DIR / 'metadata.db'}",
            "artifact_root": str(self.root / STATE_DIR / "artifacts"),
            "busy_timeout": 30.0,
        }
        for key, (env, kind) in _KEYS.items():
            raw, origin = section.get(key), f"{config} [workspace] {key}"
            if os.environ.get(env):
                raw, origin = os.environ[env], f"environment variable {env}"
            if raw is None:
                continue
            noun = "string" if kind is str else "number of seconds (0 or more)"
            try:
                # str() and float() alone would take a TOML list or table, true, inf or nan
                if isinstance(raw, bool) or (kind is str and not isinstance(raw, str)):
                    raise TypeError(f"{type(raw).__name__} is not a {noun}")
                value = kind(raw)
                if kind is float and not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{value} is not a {noun}")
                values[key] = value
            except (TypeError, ValueError) as e:
                raise WorkspaceError(
                    f"{origin} = {raw!r} is not a {noun}; fix it or unset it"
                ) from e
        return Settings(
            metadata_url=self._resolve_url(values["metadata_url"]),
            artifact_root=self._resolve_root(values["artifact_root"]),
            busy_timeout=values["busy_timeout"],
        )

    def _resolve_url(self, url: str) -> str:
        prefix = "sqlite:///"
        if url.startswith(prefix):
            path = url[len(prefix) :]
            if path and path != ":memory:" and not Path(path).is_absolute():
                return prefix + str(self.root / path)
        return url

    def _resolve_root(self, root: str) -> str:
        if "://" in root:
            return root
        path = Path(root).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    # ------------------------------------------------------------------ stores

    @cached_property
    def metadata(self) -> MetadataStore:
        from kiln.metadata import MetadataStore

        s = self.settings
        return MetadataStore(s.metadata_url, busy_timeout=s.busy_timeout)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from kiln.artifacts import ArtifactStore

        return ArtifactStore(self.settings.artifact_root, cache_dir=self.root / STATE_DIR / "cache")

    @property
    def logs_dir(self) -> Path:
        return self.root / STATE_DIR / "logs"

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.close()
