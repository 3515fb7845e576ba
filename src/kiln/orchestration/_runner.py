"""Runners: where and when a plan's steps execute.

A runner has one method, :meth:`Runner.run`, which executes a plan's steps through a
:class:`~kiln.orchestration._run.RunSession` (which owns every metadata and artifact write).
The local runner runs steps in topological order and independent steps at the same time in worker
processes (one per core by default); the Ray runner will run each step as a Ray task.
"""

from __future__ import annotations

import abc
import contextlib
import queue
import subprocess
import sys
from typing import Any

from kiln._workers import JsonLinesChild, worker_env
from kiln.orchestration._pipeline import Plan, Step
from kiln.orchestration._run import RunSession, Task, default_workers
from kiln.orchestration._worker import execute_task

__all__ = ["LocalRunner", "Runner"]

# Numeric libraries in a worker get one thread each: one worker per core, never oversubscribed.


class Runner(abc.ABC):
    """Executes a plan; the session records what happens."""

    @abc.abstractmethod
    def run(self, plan: Plan, session: RunSession) -> None:
        """Execute ``plan``'s steps, stopping cleanly after the first failure."""


class _Worker(JsonLinesChild):
    """A step-running worker process; its answers (and, should it die while running a step,
    that step's failure) go on the runner's results queue."""

    def __init__(self, results: queue.Queue[tuple[_Worker, dict[str, Any]]]) -> None:
        self.task: str | None = None
        self._results = results
        super().__init__(["-m", "kiln.orchestration._worker_main"], env=worker_env())

    def on_message(self, message: dict[str, Any]) -> None:
        self._results.put((self, message))

    def on_exit(self, code: int) -> None:
        self._report_death(code)

    def _report_death(self, code: int) -> None:
        """Fail the step this worker was running, if any, once it is known to be dead."""
        if self.task is not None:
            message = (
                f"the worker process running this step exited with code {code} "
                "(killed, or out of memory?)"
            )
            error = {"type": "WorkerDied", "message": message, "traceback": ""}
            self._results.put((self, {"task": self.task, "ok": False, "error": error}))

    def send(self, task_id: str, payload: dict[str, Any]) -> None:
        self.task = task_id
        try:
            self.write({**payload, "task": task_id})
        except OSError:  # it died between steps
            self.kill()
            self._report_death(self.proc.wait())


class LocalRunner(Runner):
    """Steps in topological order; independent ones in parallel worker processes.

    ``workers`` is the number of worker processes (default: one per core). ``workers=0`` runs every
    step in this process, one at a time — handy in a debugger. A component that cannot be imported
    by name (one defined inside a function) also runs in this process.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers

    def run(self, plan: Plan, session: RunSession) -> None:
        results: queue.Queue[tuple[_Worker, dict[str, Any]]] = queue.Queue()
        pool: list[_Worker] = []
        idle: list[_Worker] = []
        running: dict[str, Task] = {}
        done: set[str] = set()
        started: set[str] = set()
        failed = False

        def ready() -> list[Step]:
            return [
                s
                for s in plan.steps
                if s.name not in started and all(u.name in done for u in s.upstream())
            ]

        try:
            while True:
                progressed = True
                while progressed and not failed:
                    progressed = False
                    for step in ready():
                        if self.workers > 0 and not idle and len(pool) >= self.workers:
                            break
                        started.add(step.name)
                        progressed = True
                        task = session.prepare(step)
                        if task is None:
                            done.add(step.name)
                            continue
                        if self.workers == 0 or not task.payload["qualname"]:
                            session.complete(task, _in_process(task))
                            if session.results[step.name].state == "COMPLETE":
                                done.add(step.name)
                            else:
                                failed = True
                            continue
                        worker = idle.pop() if idle else _Worker(results)
                        if worker not in pool:
                            pool.append(worker)
                        running[step.name] = task
                        worker.send(step.name, task.payload)
                if not running:
                    break
                worker, result = results.get()
                task = running.pop(result["task"], None)
                if task is None:  # a second report of a worker's death
                    continue
                worker.task = None
                if worker.proc.poll() is None:
                    idle.append(worker)
                else:  # it died: never hand it another step
                    pool.remove(worker)
                    worker.close()
                session.complete(task, result)
                if session.results[task.step.name].state == "COMPLETE":
                    done.add(task.step.name)
                else:
                    failed = True
        except BaseException:
            for w in pool:
                w.kill()
            for task in running.values():
                session.fail(task, "interrupted: the run stopped while this step was running")
            raise
        finally:
            for w in pool:
                w.close()
            for w in pool:
                try:
                    w.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    w.kill()
                w.join()


def _in_process(task: Task) -> dict[str, Any]:
    log = task.payload.get("log")
    with (
        open(log, "a", encoding="utf-8") if log else contextlib.nullcontext(sys.stdout) as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        return execute_task(task.payload, task.step.component)
