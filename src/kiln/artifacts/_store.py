"""The artifact store: folders under one root (a local folder or any fsspec URL), published whole.

An artifact is written into a staging folder first. Publishing fingerprints it and moves it to its
final place in one step (``os.rename`` on a local root, which is atomic); only then does the
pipeline mark it LIVE in the metadata. A crash at any moment leaves either a staging folder (never
visible, removed by :meth:`ArtifactStore.collect_garbage`) or a complete, unreferenced folder, never
half an artifact that the metadata points at. On object storage, where there is no atomic rename,
the LIVE state in the metadata is what makes an artifact visible.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kiln.errors import ArtifactStoreError, UnsafePathError

__all__ = ["ArtifactStore", "check_uri", "fingerprint"]

_STAGING = ".staging"


def check_uri(uri: str) -> str:
    """``uri`` if a safe relative path under the artifact root, else :class:`UnsafePathError`.

    Artifact URIs in the metadata are always relative (``Table/3f2a…``): an absolute path, a drive
    or scheme, a ``..`` or ``.`` part, a backslash or an empty part would let a crafted database
    point Kiln at files outside the root.
    """
    bad = (
        not uri
        or "\x00" in uri
        or "\\" in uri
        or uri.startswith("/")
        or ":" in uri
        or any(part in ("", ".", "..") for part in uri.split("/"))
    )
    if bad:
        raise UnsafePathError(
            f"artifact path {uri!r} is not a plain relative path under the artifact root "
            "(absolute paths, '..', '.', schemes and backslashes are refused); the metadata "
            "database may have been edited by hand"
        )
    return uri


def fingerprint(path: Path) -> str:
    """A fingerprint of a file or folder: sha256 over each file's relative path and bytes."""
    outer = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        rel = "." if f == path else f.relative_to(path).as_posix()
        inner = hashlib.sha256()
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                inner.update(block)
        outer.update(rel.encode() + b"\x00" + inner.digest())
    return "sha256:" + outer.hexdigest()


class ArtifactStore:
    """Where artifacts' files live: ``root`` is a local folder or an fsspec URL (``s3://bucket/x``)."""

    def __init__(self, root: str, *, cache_dir: Path | None = None) -> None:
        self.root = root
        protocol, _, rest = root.partition("://")
        self.is_local = not rest or protocol in ("file", "local")
        self._local_root = Path(rest if rest and self.is_local else root).expanduser()
        self._cache_dir = cache_dir or Path(tempfile.gettempdir()) / "kiln-artifact-cache"
        self._fs: Any = None

    # ------------------------------------------------------------------ paths

    @property
    def local_root(self) -> Path:
        if not self.is_local:
            raise ArtifactStoreError(f"artifact root {self.root} is not a local folder")
        return self._local_root

    def _remote(self) -> tuple[Any, str]:
        if self._fs is None:
            import fsspec

            try:
                fs, path = fsspec.core.url_to_fs(self.root)
            except (ImportError, ValueError) as e:
                raise ArtifactStoreError(f"artifact root {self.root}: {e}") from e
            self._fs, self._remote_root = fs, path
        return self._fs, self._remote_root

    def path_of(self, uri: str) -> Path:
        """The local path of a LIVE artifact (downloaded into a cache first on a remote root)."""
        check_uri(uri)
        if self.is_local:
            root = self._local_root.resolve()
            path = (root / uri).resolve()
            if not path.is_relative_to(root):
                raise UnsafePathError(
                    f"artifact path {uri!r} resolves to {path}, outside the artifact root {root} "
                    "(a symbolic link points out of it)"
                )
            return path
        fs, base = self._remote()
        local = self._cache_dir / uri
        if not local.exists():
            tmp = self._cache_dir / _STAGING / uuid.uuid4().hex
            tmp.parent.mkdir(parents=True, exist_ok=True)
            if not fs.exists(f"{base}/{uri}"):
                raise ArtifactStoreError(
                    f"artifact {uri} has no files under {self.root}; they were deleted or never "
                    "published"
                )
            fs.get(f"{base}/{uri}", str(tmp), recursive=True)
            local.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, local)
        return local

    def exists(self, uri: str) -> bool:
        check_uri(uri)
        if self.is_local:
            return self.path_of(uri).exists()
        fs, base = self._remote()
        return bool(fs.exists(f"{base}/{uri}"))

    # ------------------------------------------------------------------ writing

    def check_writable(self) -> None:
        """Fail early, with what to do, when the root cannot be written."""
        self.staging_dir().rmdir()

    def staging_dir(self) -> Path:
        """A new empty local folder to write an artifact into before it is published."""
        base = self._local_root / _STAGING if self.is_local else self._cache_dir / _STAGING
        path = base / uuid.uuid4().hex
        try:
            path.mkdir(parents=True)
        except OSError as e:
            raise ArtifactStoreError(
                f"artifact root {self.root} is not writable ({e.strerror}: {e.filename}). "
                "Fix its permissions, or set artifact_root in kiln.toml (or KILN_ARTIFACT_ROOT) "
                "to a writable folder."
            ) from e
        return path

    @staticmethod
    def new_uri(type_name: str) -> str:
        return check_uri(f"{type_name}/{uuid.uuid4().hex}")

    def publish(self, staged: Path, uri: str) -> None:
        """Move a complete staged artifact to ``uri`` in one step; it must not exist yet."""
        check_uri(uri)
        if self.is_local:
            final = self._local_root / uri
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staged, final)  # atomic; fails if final exists and is not empty
            except OSError as e:
                raise ArtifactStoreError(
                    f"cannot publish artifact {uri} under {self.root}: {e.strerror}"
                ) from e
            return
        fs, base = self._remote()
        if fs.exists(f"{base}/{uri}"):  # put would nest the staged folder inside the existing one
            raise ArtifactStoreError(f"cannot publish artifact {uri} under {self.root}: it exists")
        fs.put(str(staged), f"{base}/{uri}", recursive=True)
        shutil.rmtree(staged, ignore_errors=True)

    def delete(self, uri: str) -> None:
        check_uri(uri)
        if self.is_local:
            path = self.path_of(uri)
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        else:
            fs, base = self._remote()
            if fs.exists(f"{base}/{uri}"):
                fs.rm(f"{base}/{uri}", recursive=True)

    def collect_garbage(self, older_than_s: float = 3600.0) -> int:
        """Remove staging folders left by crashed writers; returns how many were removed."""
        base = self._local_root / _STAGING if self.is_local else self._cache_dir / _STAGING
        if not base.exists():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in base.iterdir():
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed
