"""Orchestration overhead of Kiln's local runner, against a plain Python loop (same run).

Prints, as medians over repeats:

1. per-step overhead of a no-op component: (pipeline wall time - plain loop time) / steps, for the
   default worker pool and for in-process execution (``workers=0``). Goal: <= 20 ms a step.
2. the wall time of a fully cached rerun of a 10-step pipeline through the real ``kiln run``
   command, minus the interpreter's own start-up (``python -c pass``). Goal: <= 0.5 s.

and each number's ratio to the plain loop. Run: ``.venv/bin/python bench/pipeline_overhead.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PIPELINE = textwrap.dedent(
    """
    from kiln import Metrics, component, pipeline

    @component
    def noop(previous: Metrics, i: int) -> Metrics:
        return Metrics({"i": i})

    @component
    def first(i: int) -> Metrics:
        return Metrics({"i": i})

    @pipeline(name="overhead")
    def overhead(steps: int = 10, seed: int = 0) -> None:
        out = first(i=seed).output
        for i in range(1, steps):
            out = noop(out, i=i).output
    """
)


def _median_time(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from kiln.orchestration import LocalRunner, load_pipeline, run
    from kiln.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file = root / "overhead_pipeline.py"
        file.write_text(PIPELINE)
        ws, _ = Workspace.init(root / "ws")
        pipe = load_pipeline(file)
        module = sys.modules[pipe.__module__]

        # The baseline: the same functions called in a plain loop, values kept in memory.
        def plain_loop() -> None:
            out = module.first.fn(i=0)
            for i in range(1, args.steps):
                out = module.noop.fn(out, i=i)

        loop_s = _median_time(plain_loop, max(args.repeats, 50))

        seeds = iter(range(1, 10**6))

        def fresh_run(workers: int | None) -> None:
            # a new seed each time: every step misses the cache and really runs
            plan = pipe.build(steps=args.steps, seed=next(seeds))
            run(plan, workspace=ws, runner=LocalRunner(workers), command="bench")

        pool_s = _median_time(lambda: fresh_run(None), args.repeats)
        inproc_s = _median_time(lambda: fresh_run(0), args.repeats)

        # A fully cached rerun through the real CLI, against the bare interpreter's start-up.
        kiln = str(Path(sys.executable).parent / "kiln")
        cmd = [kiln, "run", str(file), "--param", f"steps={args.steps}"]
        subprocess.run(cmd, cwd=ws.root, check=True, capture_output=True)  # fills the cache
        python_s = _median_time(
            lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeats
        )
        cached_s = _median_time(
            lambda: subprocess.run(cmd, cwd=ws.root, check=True, capture_output=True),
            args.repeats,
        )
        ws.close()

    n = args.steps
    per_pool = (pool_s - loop_s) / n * 1000
    per_inproc = (inproc_s - loop_s) / n * 1000
    beyond = cached_s - python_s
    print(f"steps: {n}, repeats: {args.repeats} (medians)")
    print(
        f"plain Python loop (baseline):        {loop_s * 1e6:10.1f} us  "
        f"({loop_s / n * 1e6:.1f} us/step)"
    )
    print(
        f"local runner, worker processes:      {pool_s * 1000:10.1f} ms  "
        f"overhead {per_pool:6.2f} ms/step (goal <= 20)  {pool_s / loop_s:8.0f}x the loop"
    )
    print(
        f"local runner, in-process (workers=0): {inproc_s * 1000:9.1f} ms  "
        f"overhead {per_inproc:6.2f} ms/step (goal <= 20)  {inproc_s / loop_s:8.0f}x the loop"
    )
    print(
        f"cached rerun via `kiln run`:          {cached_s * 1000:9.1f} ms  "
        f"interpreter start-up {python_s * 1000:.1f} ms, beyond it {beyond * 1000:.1f} ms "
        f"(goal <= 500)  {cached_s / loop_s:8.0f}x the loop"
    )


if __name__ == "__main__":
    main()
