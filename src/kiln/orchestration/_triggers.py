"""What starts a run besides a person: a schedule, new data in a folder; and the lock that keeps
two runs of one pipeline from overlapping.

- :func:`parse_interval` reads ``30s``, ``15m``, ``1h30m``, ``1d`` (units s, m, h, d).
- :class:`Ticker` is a schedule's grid: tick *k* is due at ``start + k * interval``, so a schedule
  never drifts, and the ticks that passed while a run was going are counted and skipped.
- :class:`FolderWatcher` polls a folder (no inotify, no extra dependency) for new files and new
  partition folders (``date=2026-11-26/``), takes an arrival only once its size and mtime have held
  still for ``settle`` seconds, and remembers what it has taken in a small JSON file under the
  workspace's ``.kiln/triggers/``, written atomically, so a restarted watcher does not take a file
  twice. Names starting with ``.`` or ``_`` are ignored (Hive/Spark's hidden files:
  ``_SUCCESS``, ``_temporary/``, ``.part-0.crc``), so writing to ``.name.tmp`` and renaming is an
  atomic arrival.
- :class:`PipelineLock` is an OS file lock (``flock``) on ``.kiln/locks/<pipeline>.lock``: one
  holder per pipeline name and workspace; the kernel releases it when the holder dies, however it
  dies. The file says who holds it (pid, host, since when, what).

Passing arrivals to a pipeline (see :func:`new_data_mode`): a pipeline that declares a parameter
``new_data: list[str]`` gets the absolute paths of one batch of arrivals per run; one that
declares ``new_data: str`` gets one run per arrival, with its path. The paths are also in the
environment variable ``KILN_NEW_DATA`` (a JSON list), but a parameter is in the cache key and an
environment variable is not: read the parameter.

The errors here are :class:`TriggerError` (a bad interval, folder or combination of options:
exit code 2) and :class:`PipelineBusyError` (another process runs the pipeline: exit code 75,
EX_TEMPFAIL, "try again later"); both are :class:`~kiln.errors.KilnError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import math
import os
import re
import socket
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kiln.errors import KilnError, PipelineBusyError, TriggerError
from kiln.orchestration._pipeline import Pipeline
from kiln.workspace import STATE_DIR, Workspace

__all__ = [
    "NEW_DATA_ENV",
    "NEW_DATA_PARAM",
    "TRIGGER_ENV",
    "Arrival",
    "FolderWatcher",
    "LockHolder",
    "PipelineBusyError",
    "PipelineLock",
    "Ticker",
    "TriggerError",
    "format_interval",
    "new_data_mode",
    "parse_interval",
    "trigger_env",
]

NEW_DATA_PARAM = "new_data"
NEW_DATA_ENV = "KILN_NEW_DATA"
TRIGGER_ENV = "KILN_TRIGGER"
STATE_VERSION = 1


# ---------------------------------------------------------------------------- intervals

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")
_WHOLE = re.compile(rf"(?:{_PART.pattern})+")


def parse_interval(text: str, *, option: str = "--every", allow_zero: bool = False) -> float:
    """Seconds in ``text``: a number and a unit (s, m, h, d), or several (``1h30m``)."""
    s = text.strip().lower()
    example = "use a number and a unit (s, m, h, d), e.g. 30s, 15m, 1h30m, 1d"
    if s.startswith("-"):
        raise TriggerError(f"{option} {text!r}: an interval cannot be negative; {example}")
    if re.fullmatch(r"\d+(\.\d*)?", s):
        raise TriggerError(f"{option} {text!r} has no unit; {example} (here: {s}s?)")
    if not _WHOLE.fullmatch(s):
        raise TriggerError(f"{option} {text!r} is not an interval; {example}")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
    if not math.isfinite(seconds):
        raise TriggerError(f"{option} {text!r} is too long; {example}")
    if seconds <= 0 and not (allow_zero and seconds == 0):
        need = "0 or more" if allow_zero else "more than zero"
        raise TriggerError(f"{option} {text!r} must be {need}; {example}")
    return seconds


def format_interval(seconds: float) -> str:
    """``5400`` -> ``1h30m``, ``0.2`` -> ``0.2s``: text that :func:`parse_interval` reads."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    out, rest = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out, rest = out + f"{rest // size}{unit}", rest % size
    return out


@dataclass
class Ticker:
    """A schedule's ticks: tick ``k`` is due ``k * interval`` seconds after tick 0 (no drift).

    Times are :func:`time.monotonic` seconds (immune to clock changes); :meth:`wall` gives a tick's
    wall-clock time for people and the metadata.
    """

    interval: float
    start: float = field(default_factory=time.monotonic)
    start_wall: float = field(default_factory=time.time)

    def due(self, k: int) -> float:
        return self.start + k * self.interval

    def wall(self, k: int) -> float:
        return self.start_wall + k * self.interval

    def next_after(self, k: int, now: float | None = None) -> tuple[int, int]:
        """The next tick after tick ``k`` that is not yet past, and how many were skipped."""
        now = time.monotonic() if now is None else now
        later = max(k + 1, math.ceil((now - self.start) / self.interval))
        if self.due(later) < now:  # rounding at an exact multiple
            later += 1
        return later, later - k - 1


# ---------------------------------------------------------------------------- the lock


@dataclass(frozen=True)
class LockHolder:
    """Who holds a pipeline's lock, as the holder wrote it."""

    pid: int
    host: str
    since_ms: int
    what: str

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.since_ms / 1000))
        where = (
            f"pid {self.pid}" if self.host == socket.gethostname() else f"{self.host}:{self.pid}"
        )
        return f"{where}, since {when}" + (f": {self.what}" if self.what else "")


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"
    if safe != name:
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return safe


class PipelineLock:
    """One runner at a time per pipeline and workspace: ``flock`` on ``.kiln/locks/NAME.lock``.

    ::

        lock = PipelineLock(ws, "hello")
        if lock.acquire(wait=False):
            try:
                run(...)
            finally:
                lock.release()

    or ``with PipelineLock(ws, "hello"):`` to wait for it. The lock belongs to this process (it is
    not inherited by worker processes); the kernel releases it when the process ends, even by
    ``kill -9``. It serialises runs on one machine (or on a shared file system with working
    ``flock``), not across machines that share only a PostgreSQL metadata database.
    """

    def __init__(self, workspace: Workspace | Path, pipeline: str) -> None:
        root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
        self.pipeline = pipeline
        self.path = root / STATE_DIR / "locks" / f"{_safe_name(pipeline)}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, as written in the file; ``None`` when unknown or free."""
        try:
            data = json.loads(self.path.read_text() or "null")
            return LockHolder(
                int(data["pid"]), str(data["host"]), int(data["since_ms"]), str(data["what"])
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _try(self, what: str) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise KilnError(
                f"cannot open the lock file {self.path}: {e.strerror}; the workspace's "
                f"{STATE_DIR}/ folder must be writable"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since_ms": int(time.time() * 1000),
            "what": what,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return True

    def acquire(
        self,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_wait: Callable[[LockHolder | None], None] | None = None,
        what: str = "",
        poll: float = 0.1,
    ) -> bool:
        """Take the lock; ``False`` when it is held elsewhere and ``wait`` is off or time ran out.

        While waiting, ``on_wait`` is called once with the holder (to tell the user).
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while not self._try(what):
            if not wait or (deadline is not None and time.monotonic() >= deadline):
                return False
            if not told and on_wait is not None:
                on_wait(self.holder())
                told = True
            time.sleep(poll)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # who held it is no longer true; readers find it free
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> PipelineLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------------------- new data


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


@dataclass(frozen=True)
class Arrival:
    """A new file, or a new partition folder, in a watched folder."""

    name: str
    path: Path
    kind: Literal["file", "partition"]
    files: int
    bytes: int


@dataclass
class _Seen:
    signature: tuple[Any, ...]
    since: float
    matches: int
    size: int


class FolderWatcher:
    """Polls ``folder`` for new files matching ``pattern`` and new partition folders.

    A top-level file arrives when its name matches ``pattern``; a top-level folder (a partition)
    arrives when it holds at least one matching file at any depth. Either is taken once nothing in
    it has changed size or mtime for ``settle`` seconds. A name, once taken (:meth:`mark`), is
    never taken again, even after a restart: write a new file or partition for new data.
    """

    def __init__(
        self, folder: Path, state_file: Path, *, pattern: str = "*", settle: float = 2.0
    ) -> None:
        folder = folder.expanduser()
        if not folder.exists():
            raise TriggerError(
                f"--on-new-data {folder}: no such folder; create it (mkdir -p {folder}) or fix "
                "the path"
            )
        if not folder.is_dir():
            raise TriggerError(f"--on-new-data {folder} is not a folder; give the folder to watch")
        if not pattern or "/" in pattern:
            raise TriggerError(
                f"--pattern {pattern!r}: give a file-name pattern such as '*.parquet' (it is "
                "matched against file names, at any depth inside partition folders)"
            )
        self.folder = folder.resolve()
        self.state_file = state_file
        self.pattern = pattern
        self.settle = settle
        self.processed: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, _Seen] = {}
        self.reload()

    @classmethod
    def for_pipeline(
        cls,
        workspace: Workspace,
        pipeline: str,
        folder: Path,
        *,
        pattern: str = "*",
        settle: float = 2.0,
    ) -> FolderWatcher:
        """A watcher whose state is kept in the workspace, per pipeline and watched folder."""
        resolved = folder.expanduser().resolve()
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
        state = workspace.root / STATE_DIR / "triggers" / f"{_safe_name(pipeline)}-{digest}.json"
        return cls(folder, state, pattern=pattern, settle=settle)

    # ------------------------------------------------------------------ state

    def reload(self) -> None:
        """Read what has been taken from the state file (another watcher may have added to it)."""
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            self.processed = {}
            return
        except OSError as e:
            raise TriggerError(f"cannot read the watcher state {self.state_file}: {e}") from e
        try:
            data = json.loads(text)
            processed = data["processed"]
            if data.get("version") != STATE_VERSION or not isinstance(processed, dict):
                raise ValueError(f"version {data.get('version')!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise TriggerError(
                f"the watcher state {self.state_file} is not valid ({e}); delete it to take "
                f"every file in {self.folder} as new again"
            ) from e
        self.processed = processed

    def mark(self, arrivals: list[Arrival], run_id: str, state: str) -> None:
        """Record ``arrivals`` as taken by ``run_id``; written atomically (a crash keeps the
        old state)."""
        now = int(time.time() * 1000)
        for a in arrivals:
            self.processed[a.name] = {
                "run": run_id,
                "state": state,
                "at_ms": now,
                "kind": a.kind,
                "bytes": a.bytes,
            }
            self._seen.pop(a.name, None)
        data = {
            "version": STATE_VERSION,
            "folder": str(self.folder),
            "processed": self.processed,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)
        dir_fd = os.open(self.state_file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # ------------------------------------------------------------------ polling

    @property
    def poll_interval(self) -> float:
        """How often to :meth:`poll`: often enough to see an arrival soon after it settles."""
        return min(1.0, max(0.05, self.settle / 4))

    def pending(self) -> int:
        """How many new arrivals are seen but not yet settled (or taken)."""
        return sum(1 for s in self._seen.values() if s.matches)

    def poll(self) -> list[Arrival]:
        """The new arrivals that have settled, by name; each until it is :meth:`mark`\\ ed."""
        now = time.monotonic()
        try:
            entries = list(os.scandir(self.folder))
        except OSError as e:
            raise TriggerError(f"cannot read the watched folder {self.folder}: {e.strerror}") from e
        present: set[str] = set()
        ready: list[Arrival] = []
        for entry in sorted(entries, key=lambda e: e.name):
            if _hidden(entry.name) or entry.name in self.processed:
                continue
            observed = self._observe(entry)
            if observed is None:
                continue
            kind, signature, matches, size = observed
            present.add(entry.name)
            seen = self._seen.get(entry.name)
            if seen is None or seen.signature != signature:
                seen = self._seen[entry.name] = _Seen(signature, now, matches, size)
            if matches and now - seen.since >= self.settle:
                ready.append(Arrival(entry.name, Path(entry.path), kind, matches, size))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return ready

    def _observe(
        self, entry: os.DirEntry[str]
    ) -> tuple[Literal["file", "partition"], tuple[Any, ...], int, int] | None:
        try:
            if entry.is_file():
                if not fnmatch.fnmatchcase(entry.name, self.pattern):
                    return None
                st = entry.stat()
                return "file", (st.st_size, st.st_mtime_ns), 1, st.st_size
            if entry.is_dir():
                files: list[tuple[str, int, int]] = []
                matches = size = 0
                for path in _walk(Path(entry.path)):
                    st = path.stat()
                    rel = path.relative_to(entry.path)
                    files.append((str(rel), st.st_size, st.st_mtime_ns))
                    if not any(_hidden(p) for p in rel.parts) and fnmatch.fnmatchcase(
                        path.name, self.pattern
                    ):
                        matches += 1
                        size += st.st_size
                return "partition", tuple(sorted(files)), matches, size
        except FileNotFoundError:  # removed while we looked: look again next time
            return None
        return None


def _walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` (hidden ones too: activity there means not settled)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            yield Path(root) / name


def new_data_mode(pipeline: Pipeline) -> Literal["batch", "each", "none"]:
    """How a pipeline takes arrivals: ``new_data: list[str]`` (a batch per run), ``new_data: str``
    (a run per arrival), or no such parameter ("none": it reads the folder itself)."""
    spec = pipeline.params.get(NEW_DATA_PARAM)
    if spec is None:
        return "none"
    ann = spec.annotation
    options = (
        typing.get_args(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType)
        else (ann,)
    )
    if any(a is list or typing.get_origin(a) is list for a in options):
        return "batch"
    if str in options:
        return "each"
    raise TriggerError(
        f"pipeline {pipeline.name!r} declares {spec.label()}, which cannot take the new paths; "
        f"declare {NEW_DATA_PARAM}: list[str] = [] (the new paths, a batch per run) or "
        f'{NEW_DATA_PARAM}: str = "" (one run per new file or partition)'
    )


def trigger_env(trigger: Mapping[str, Any], paths: list[str] | None = None) -> dict[str, str]:
    """The environment variables a triggered run sees (its worker processes inherit them)."""
    env = {TRIGGER_ENV: json.dumps(dict(trigger), sort_keys=True)}
    if paths is not None:
        env[NEW_DATA_ENV] = json.dumps(paths)
    return env
