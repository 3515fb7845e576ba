"""The model path's overhead: Kiln's Model against the bare estimator, measured in the same run.

Generates ``--rows`` rows (default 1,000,000) x 20 columns with ``make_table`` from
``bench/data_validation.py`` (12 numeric, 8 string columns of 10 to 1000 distinct values; its
infinities are set to null, since training refuses them) plus a numeric label ``y``, then prints,
as medians of ``--repeats`` (start-up times: the best of ``--load-repeats``):

1. prediction rows/s: ``Model.predict(table)`` (validation, transform and post-processing
   included) against the bare trainer's ``predict(X)`` on the same rows already transformed (the
   floor), for ``linear_reg`` and ``boosted_tree_regressor``. Goal: >= 0.9x the floor.
   ``Model.predict`` transforms the next chunk on a second thread while the estimator (one
   thread) predicts this one, when the process has a core to spare; so the same path with that
   overlap off is printed too, as what one core alone gives.
2. transform fit rows/s of the automatic ``linear`` graph (mean impute + z-score for numbers,
   one-hot for strings): ``auto_transform(table, "linear").fit(table)`` over all the rows.
   Goal: >= 1,000,000 rows/s.
3. loading a saved model in a fresh process: the wall time of
   ``python -c "from kiln.model import Model; Model.load(p)"`` minus that of
   ``python -c "import <the estimator's library>"`` (numpy for linear_reg, lightgbm for trees),
   the baseline, measured in the same run, with byte code cached as an installed package has it.
   Goal: <= 50 ms. Also printed: the time beyond ``import <library>, pyarrow.compute``, since
   every Kiln model predicts from Arrow tables.

The linear model's automatic one-hot encoding makes ~2,500 dense columns (the vocabularies are
capped at 1000 values), 20 GB for a million rows: ``linear_reg`` is trained on and predicts
``--linear-rows`` rows (default 100,000); the trees use every row for prediction and
``--tree-train-rows`` for training. Run: ``.venv/bin/python bench/training.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from data_validation import make_table  # bench/ is on sys.path when this file runs


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def workload(rows: int, seed: int = 0) -> pa.Table:
    """``make_table`` with its infinities set to null, plus a label ``y`` that depends on a few
    numeric and string columns."""
    table = make_table(rows, seed=seed)
    for i, name in enumerate(table.column_names):
        column = table[name]
        if pa.types.is_floating(column.type):
            table = table.set_column(
                i, name, pc.if_else(pc.is_inf(column), pa.scalar(None, column.type), column)
            )
    rng = np.random.default_rng(seed + 1)
    x0 = np.nan_to_num(table["num_0"].to_numpy(zero_copy_only=False))
    x3 = np.nan_to_num(table["num_3"].to_numpy(zero_copy_only=False))
    common = pc.equal(table["cat_0"], "category_0_0").fill_null(False).to_numpy()
    y = 2.0 * x0 - 0.5 * x3 + 3.0 * common + rng.normal(0.0, 1.0, rows)
    return table.append_column("y", pa.array(y))


def prediction(
    model_type: str, train: pa.Table, rows: pa.Table, repeats: int, folder: Path
) -> tuple[float, float, float, Path]:
    """Rows/s of Model.predict, of the same path on one thread (the transform not overlapped
    with the estimator) and of the bare trainer's predict on prepared X; the saved model."""
    from kiln._threads import blas_threads
    from kiln.model import Model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(train, model_type=model_type, label="y")
    X = model.transform.transform(rows).X
    model.predict(rows.slice(0, 1000))  # warm up
    model.trainer.predict(X[:1000])
    floor = _median_time(lambda: model.trainer.predict(X), repeats)

    kiln = _median_time(lambda: model.predict(rows), repeats)

    def one_thread() -> None:  # Model.predict's own steps, the overlap left off
        model._validate(rows)
        with blas_threads():
            model._predict_chunked(rows, overlap=False)

    single = _median_time(one_thread, repeats)
    n = rows.num_rows
    return n / kiln, n / single, n / floor, model.save(folder / model_type)


def fresh_process(code: str, repeats: int, pycache: Path) -> float:
    """Best wall seconds of ``python -c code`` over ``repeats`` (interpreter start-up included;
    the minimum, since start-up times only ever get worse with noise from other processes).

    Byte code is cached under ``pycache`` as an installed package has it (pip compiles on
    install), even where PYTHONDONTWRITEBYTECODE is set: otherwise each start would compile
    Kiln's source again, a cost no deployed model pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    cmd = [sys.executable, "-c", code]
    subprocess.run(cmd, check=True, env=env)  # warm the page cache, write the byte code
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--linear-rows", type=int, default=100_000)
    parser.add_argument("--tree-train-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load-repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="as bench/data_validation.py")
    args = parser.parse_args()

    from kiln.transform import auto_transform

    t0 = time.perf_counter()
    table = workload(args.rows)
    print(
        f"data: {table.num_rows:,} rows x {table.num_columns - 1} columns + label "
        f"({time.perf_counter() - t0:.1f} s to generate)"
    )

    # 2. transform fit of the automatic linear graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = auto_transform(table, "linear", exclude=["y"])
        graph.fit(table.slice(0, 10_000))  # warm up
        fit_s = _median_time(lambda: graph.fit(table), args.repeats)
    fit_rate = table.num_rows / fit_s
    print(
        f"transform fit, auto linear graph ({len(graph.ops)} ops): {fit_rate:12,.0f} rows/s  "
        f"({fit_s:.3f} s)   goal >= 1,000,000 rows/s   ratio {fit_rate / 1e6:.2f}x the goal"
    )

    with tempfile.TemporaryDirectory() as tmp:
        saved: dict[str, Path] = {}
        # 1. prediction throughput against the bare estimator
        for model_type, train_rows, predict_rows in (
            ("linear_reg", args.linear_rows, args.linear_rows),
            ("boosted_tree_regressor", args.tree_train_rows, args.rows),
        ):
            kiln, single, floor, saved[model_type] = prediction(
                model_type,
                table.slice(0, train_rows),
                table.slice(0, predict_rows),
                args.repeats,
                Path(tmp),
            )
            print(
                f"predict, {model_type:<22} ({predict_rows:,} rows): Model.predict "
                f"{kiln:12,.0f} rows/s, bare trainer.predict on prepared X (floor) "
                f"{floor:12,.0f} rows/s   ratio {kiln / floor:.2f}x (goal >= 0.90x); "
                f"on one thread {single:12,.0f} rows/s, {single / floor:.2f}x"
            )

        # 3. loading in a fresh process, beyond importing the estimator's library
        for model_type, library in (
            ("linear_reg", "numpy"),
            ("boosted_tree_regressor", "lightgbm"),
        ):
            load = f"from kiln.model import Model; Model.load({str(saved[model_type])!r})"
            pyc = Path(tmp) / "pycache"
            load_s = fresh_process(load, args.load_repeats, pyc)
            bare_s = fresh_process(f"import {library}", args.load_repeats, pyc)
            # for reference: the library and Arrow's compute (Model.load no longer needs it)
            arrow_s = fresh_process(f"import {library}, pyarrow.compute", args.load_repeats, pyc)
            beyond = (load_s - bare_s) * 1000
            print(
                f"load in a fresh process, {model_type:<22}: {load_s * 1000:7.1f} ms, "
                f"`import {library}` (baseline) {bare_s * 1000:6.1f} ms, beyond it "
                f"{beyond:6.1f} ms   goal <= 50 ms   ratio {beyond / 50:.2f}x the goal "
                f"({load_s / bare_s:.2f}x the baseline); beyond `import {library}, "
                f"pyarrow.compute` ({arrow_s * 1000:.1f} ms): {(load_s - arrow_s) * 1000:.1f} ms"
            )


if __name__ == "__main__":
    main()
