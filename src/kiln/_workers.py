"""Kiln's worker processes (pipeline steps, tuning trials): their environment (one thread for
every numeric library, and this interpreter's import path, so that a worker imports exactly what
its parent did; two shared cores ran 30-120x slower when libraries took every core each), and
:class:`JsonLinesChild`, how the parent speaks to one."""

from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

__all__ = ["THREAD_VARS", "JsonLinesChild", "worker_env"]

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
    "ARROW_NUM_THREADS",
)
"""The thread-count variables of the libraries Kiln runs (BLAS, Polars, Arrow...)."""


def worker_env(*, force_one_thread: bool = False) -> dict[str, str]:
    """This process's environment for a worker: each of :data:`THREAD_VARS` at 1 (unless the
    user set it, or always with ``force_one_thread``), ``PYTHONPATH`` = this ``sys.path``."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        if force_one_thread:
            env[var] = "1"
        else:
            env.setdefault(var, "1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    return env


class JsonLinesChild(abc.ABC):
    """A Python child process spoken to in JSON lines: :meth:`write` sends it one object on a
    line of its stdin; a reader thread hands each line it prints to :meth:`on_message` and, when
    its output ends, its exit code to :meth:`on_exit`. (The thread starts in ``__init__``:
    subclasses set what those two methods use before calling it.)"""

    def __init__(
        self, args: Sequence[str], *, env: Mapping[str, str], stderr: IO[bytes] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(env),
        )
        assert self.proc.stdin is not None
        self._stdin: IO[str] = io.TextIOWrapper(
            self.proc.stdin, encoding="utf-8", line_buffering=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @abc.abstractmethod
    def on_message(self, message: dict[str, Any]) -> None:
        """One object the child printed (called on the reader thread)."""

    @abc.abstractmethod
    def on_exit(self, code: int) -> None:
        """The child's output ended and it exited with ``code`` (called on the reader thread)."""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with io.TextIOWrapper(self.proc.stdout, encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    self.on_message(json.loads(line))
        self.on_exit(self.proc.wait())

    def write(self, message: dict[str, Any]) -> None:
        """Send ``message`` as one line; OSError when the child is gone."""
        self._stdin.write(json.dumps(message) + "\n")

    def close(self) -> None:
        """Close its input: a child that reads to the end of it then exits."""
        with contextlib.suppress(OSError):
            self._stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def join(self, timeout: float = 10) -> None:
        """Wait for the reader thread (it ends with the child's output)."""
        self._reader.join(timeout=timeout)
