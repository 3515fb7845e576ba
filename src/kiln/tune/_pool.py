"""The tuner's side of its worker processes (:mod:`kiln.tune._worker`): start them with the data
written once as Arrow IPC files, send trials, relay their reports, collect results.

Every message of every worker arrives on one queue, read by the tuner's loop: a worker's report
is answered at once (prune or go on), so pruning in parallel trials follows exactly the rule it
follows in the tuner's own process. Workers run numeric libraries on one thread each.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa

from kiln._workers import JsonLinesChild, worker_env
from kiln.tune._trial import TrialData

__all__ = ["Worker", "WorkerPool", "write_data"]

Events = queue.Queue[tuple["Worker", dict[str, Any]]]


def write_data(data: TrialData, folder: Path) -> Path:
    """Write the tables (Arrow IPC, memory-mapped by the workers) and the fitted transform into
    ``folder``; returns the spec file a worker is started with."""

    def write(table: pa.Table, name: str) -> str:
        path = folder / name
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return str(path)

    spec: dict[str, Any] = {
        "train": write(data.train, "train.arrow"),
        "eval": write(data.eval, "eval.arrow"),
        "model_type": data.model_type,
        "label": data.label,
        "objective": data.objective,
        "trainer_module": data.trainer_module,
        "transform": None,
    }
    if data.fitted_transform is not None:
        data.fitted_transform.save(folder / "transform")
        spec["transform"] = str(folder / "transform")
    path = folder / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


class Worker(JsonLinesChild):
    """One worker process; its reader thread puts each message (and, at its end, ``{"died":
    exit code}``) on the pool's queue."""

    def __init__(self, spec: Path, log: Path, events: Events) -> None:
        self.log = log
        self.trial: int | None = None
        self._events = events
        with open(log, "ab") as stderr:
            super().__init__(
                ["-m", "kiln.tune._worker", str(spec)],
                env=worker_env(force_one_thread=True),  # one trial per core, never oversubscribed
                stderr=stderr,
            )

    def on_message(self, message: dict[str, Any]) -> None:
        self._events.put((self, message))

    def on_exit(self, code: int) -> None:
        self._events.put((self, {"died": code}))

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # it died: its reader reports that
            self.write(message)

    def stderr_tail(self, chars: int = 2000) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-chars:].strip()

    def stop(self) -> None:
        """Close its input (it exits after the trial it runs), then wait; kill if it hangs."""
        self.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        self.join()


class WorkerPool:
    """Up to ``size`` workers, started on demand, all reporting on :attr:`events`."""

    def __init__(self, size: int, spec: Path) -> None:
        self.size = size
        self.spec = spec
        self.events: Events = queue.Queue()
        self.workers: list[Worker] = []
        self.idle: list[Worker] = []

    def acquire(self) -> Worker:
        if self.idle:
            return self.idle.pop()
        log = self.spec.parent / f"worker-{len(self.workers)}.log"
        worker = Worker(self.spec, log, self.events)
        self.workers.append(worker)
        return worker

    def release(self, worker: Worker) -> None:
        worker.trial = None
        if worker.proc.poll() is None:
            self.idle.append(worker)

    def discard(self, worker: Worker) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        worker.trial = None

    def kill(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.proc.kill()

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        for worker in self.workers:
            worker.stop()
