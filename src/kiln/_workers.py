"""The environment of Kiln's worker processes (pipeline steps, tuning trials): one thread for
every numeric library, and this interpreter's import path, so that a worker imports exactly what
its parent did. Two shared cores ran 30-120x slower when libraries took every core each."""

from __future__ import annotations

import os
import sys

__all__ = ["THREAD_VARS", "worker_env"]

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
