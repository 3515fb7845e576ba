"""A trial worker process: ``python -m kiln.tune._worker SPEC.json``.

It reads the tuning run's data once (Arrow IPC files named in the spec, and the fitted transform's
folder when there is one), then runs one trial per line it reads on stdin, speaking JSON lines:

::

    in:  {"trial": 3, "settings": {...}}              run trial 3 with these settings
    out: {"trial": 3, "report": [step, loss]}         after each iteration, then waits for
    in:  {"prune": false}                             the tuner's answer (true: stop the trial)
    out: {"trial": 3, "state": "COMPLETE", "score": 0.97, "duration_s": 1.2}
         {"trial": 3, "state": "PRUNED", "duration_s": 0.4}
         {"trial": 3, "state": "FAILED", "error": "TrainingError: ...", "duration_s": 0.1}

Only JSON crosses the process boundary, never pickles. Anything the libraries print goes to
stderr (the tuner keeps it in a log file), never into the protocol on stdout.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from kiln.tune._trial import TrialData, run_trial

__all__ = ["load_data", "main"]


class _Pruned(Exception):
    """The tuner told this worker to stop the running trial."""


def load_data(spec: dict[str, Any]) -> TrialData:
    import importlib

    from kiln.transform import FittedTransform

    if spec.get("trainer_module"):
        importlib.import_module(spec["trainer_module"])  # registers a DIY trainer

    def read(path: str) -> pa.Table:
        with pa.memory_map(path) as source:
            return pa.ipc.open_file(source).read_all()

    transform = spec.get("transform")
    return TrialData(
        train=read(spec["train"]),
        eval=read(spec["eval"]),
        model_type=spec["model_type"],
        label=spec.get("label"),
        objective=spec["objective"],
        fitted_transform=FittedTransform.load(transform) if transform else None,
        trainer_module=spec.get("trainer_module") or "",
    )


def _run(data: TrialData, task: dict[str, Any], out: IO[str], stdin: IO[str]) -> dict[str, Any]:
    number = task["trial"]

    def report(step: int, value: float) -> None:
        out.write(json.dumps({"trial": number, "report": [step, value]}) + "\n")
        answer = stdin.readline()
        if not answer:
            raise SystemExit(0)  # the tuner is gone
        if json.loads(answer).get("prune"):
            raise _Pruned

    started = time.perf_counter()
    result: dict[str, Any] = {"trial": number}
    try:
        result["score"] = run_trial(data, task["settings"], report)
        result["state"] = "COMPLETE"
    except _Pruned:
        result["state"] = "PRUNED"
    except Exception as e:
        result["state"] = "FAILED"
        result["error"] = f"{type(e).__name__}: {e}"
    result["duration_s"] = time.perf_counter() - started
    return result


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", line_buffering=True)
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol
    data = load_data(spec)
    stdin = sys.stdin
    while True:
        line = stdin.readline()
        if not line:
            return
        if line.strip():
            out.write(json.dumps(_run(data, json.loads(line), out, stdin)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
