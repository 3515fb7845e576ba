"""Data validation throughput: Kiln's statistics against a hand-written Polars query (same run).

Generates ``--rows`` rows (default 1,000,000) x 20 columns with a seeded numpy generator: 12 float
columns with NaNs (2 %), infinities (0.1 %) and nulls (1 %), and 8 string columns with 10 to 1000
distinct values; writes them to a temporary Parquet file, then times, as medians of ``--repeats``:

1. the floor: one Polars query (``scan_parquet(...).select(...)``) computing the same statistics
   exactly — counts, nulls, NaN/inf counts, mean, std dev, zeros, min, median, max, an equal-width
   histogram and deciles of the finite values; distinct count, top 1000 values and mean length of
   the strings;
2. Kiln: ``generate_statistics(pyarrow.parquet.read_table(path), threads=THREADS)``;

and prints Kiln's ratio to the floor (goal: <= 1.0). Both use ``--threads`` threads (default 2:
the machine's two shared cores). Run: ``.venv/bin/python bench/data_validation.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUMERIC = 12
CARDINALITIES = (10, 25, 50, 100, 200, 400, 700, 1000)


def _threads() -> int:
    # Thread pools read their size once, at import: set it before polars / pyarrow load.
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 2


THREADS = _threads()
os.environ["POLARS_MAX_THREADS"] = str(THREADS)

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

pa.set_cpu_count(THREADS)
pa.set_io_thread_count(THREADS)


def make_table(rows: int, seed: int = 0, drift: float = 0.0) -> pa.Table:
    """The workload; ``drift`` shifts every numeric column by that many standard deviations."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(NUMERIC):
        x = rng.normal(loc=i + drift * (1 + i), scale=1 + i, size=rows)
        x[rng.random(rows) < 0.02] = np.nan
        x[rng.random(rows) < 0.0005] = np.inf
        x[rng.random(rows) < 0.0005] = -np.inf
        x[rng.random(rows) < 0.05] = 0.0
        nulls = rng.random(rows) < 0.01
        columns[f"num_{i}"] = pa.array(x, mask=nulls)
    for i, card in enumerate(CARDINALITIES):
        names = pa.array([f"category_{i}_{j}" for j in range(card)])
        # Zipf-like frequencies, so that top values are not a tie.
        p = 1.0 / np.arange(1, card + 1)
        idx = rng.choice(card, size=rows, p=p / p.sum())
        nulls = rng.random(rows) < 0.01
        columns[f"cat_{i}"] = pa.DictionaryArray.from_arrays(
            pa.array(idx.astype(np.int32), mask=nulls), names
        ).cast(pa.string())
    return pa.table(columns)


def polars_floor(path: Path, numeric: list[str], strings: list[str]) -> pl.DataFrame:
    """The same statistics, exact, as one hand-written Polars query."""
    inf = float("inf")
    exprs: list[pl.Expr] = []
    for c in numeric:
        col = pl.col(c)
        f = col.filter(col.is_finite())
        lo, hi = f.min(), f.max()
        width = (hi - lo) / 10
        bucket = ((f - lo) / width).floor().clip(0, 9).cast(pl.Int8)
        exprs += [
            col.count().alias(f"{c}.count"),
            col.null_count().alias(f"{c}.missing"),
            col.is_nan().sum().alias(f"{c}.nan"),
            (col == inf).sum().alias(f"{c}.pos_inf"),
            (col == -inf).sum().alias(f"{c}.neg_inf"),
            f.mean().alias(f"{c}.mean"),
            f.std(ddof=0).alias(f"{c}.std"),
            (f == 0).sum().alias(f"{c}.zeros"),
            lo.alias(f"{c}.min"),
            hi.alias(f"{c}.max"),
            # Median and deciles in one call (Polars sorts once for a list of quantiles).
            f.quantile([q / 10 for q in range(1, 10)]).alias(f"{c}.deciles"),
            bucket.value_counts().implode().alias(f"{c}.histogram"),
        ]
    for c in strings:
        col = pl.col(c)
        exprs += [
            col.count().alias(f"{c}.count"),
            col.null_count().alias(f"{c}.missing"),
            col.drop_nulls().n_unique().alias(f"{c}.unique"),
            col.drop_nulls().value_counts(sort=True).head(1000).implode().alias(f"{c}.top"),
            col.str.len_chars().mean().alias(f"{c}.avg_length"),
        ]
    return pl.scan_parquet(path).select(exprs).collect()


def kiln_stats(path: Path) -> Any:
    from kiln.data import generate_statistics

    return generate_statistics(pq.read_table(path), threads=THREADS)


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=0,
        help="also stream this many rows through `kiln stats` (the issue's check: 10000000)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        t0 = time.perf_counter()
        table = make_table(args.rows)
        pq.write_table(table, path)
        numeric = [c for c in table.column_names if c.startswith("num_")]
        strings = [c for c in table.column_names if c.startswith("cat_")]
        del table
        print(
            f"data: {args.rows:,} rows x {NUMERIC + len(CARDINALITIES)} columns "
            f"({time.perf_counter() - t0:.1f} s to generate), threads: {THREADS}"
        )
        # Warm both up (imports, page cache) before timing.
        polars_floor(path, numeric, strings)
        kiln_stats(path)
        floor = _median_time(lambda: polars_floor(path, numeric, strings), args.repeats)
        kiln = _median_time(lambda: kiln_stats(path), args.repeats)
        print(f"statistics, Polars query (floor): {floor:8.3f} s")
        print(
            f"statistics, Kiln                : {kiln:8.3f} s   ratio {kiln / floor:.2f}x the floor"
        )
        validate_process(Path(tmp), path, args.rows, args.repeats)
        if args.stream_rows:
            streaming(Path(tmp), args.stream_rows)


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds and peak resident memory (GB) of one whole process, and its exit code."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    wall, peak_kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(peak_kb) / 1024 / 1024, proc.returncode


def validate_process(tmp: Path, train: Path, rows: int, repeats: int) -> None:
    """`kiln validate serving --schema --baseline train` as one whole process, start-up included."""
    from kiln.data import read_schema, write_schema

    kiln = str(Path(sys.executable).parent / "kiln")
    serving = tmp / "serving.parquet"
    pq.write_table(make_table(rows, seed=1, drift=1.0).drop_columns(["cat_0"]), serving)
    subprocess.run(
        [kiln, "schema", "infer", str(train), "--out", "schema.yaml"], cwd=tmp, check=True
    )
    schema = read_schema(tmp / "schema.yaml")
    schema.set_environments("cat_0", not_in_environment=["SERVING"])  # the label
    for feature in schema.features:  # numeric columns drift by one standard deviation
        schema.set_drift_threshold(feature.name, 0.05)
    write_schema(schema, tmp / "schema.yaml")
    cmd = [kiln, "validate", str(serving), "--schema", "schema.yaml", "--baseline", str(train)]
    cmd += ["--environment", "SERVING", "--format", "json"]
    runs = [_timed(cmd, tmp) for _ in range(repeats)]
    wall = statistics.median(r[0] for r in runs)
    peak = max(r[1] for r in runs)
    code = runs[0][2]
    imports = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import kiln.cli._app, kiln.cli._data, "
            "kiln.data._ingest, kiln.data._stats, kiln.data._schema, kiln.data._validate; "
            "print(time.perf_counter() - t)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        f"kiln validate (whole process)   : {wall:8.3f} s   (goal <= 2.5 s), peak memory "
        f"{peak:.2f} GB (goal <= 0.5), exit code {code} (1: the drift was found)"
    )
    print(f"import of kiln for that path    : {float(imports.stdout):8.3f} s   (goal <= 0.5 s)")


def streaming(tmp: Path, rows: int) -> None:
    """`kiln stats` over a file written in 1M-row pieces: memory stays bounded as rows grow."""
    kiln = str(Path(sys.executable).parent / "kiln")
    big = tmp / "big.parquet"
    step = 1_000_000
    first = make_table(min(step, rows), seed=10)
    with pq.ParquetWriter(big, first.schema) as writer:
        writer.write_table(first)
        for i in range(step, rows, step):
            writer.write_table(make_table(min(step, rows - i), seed=10 + i // step))
    wall, peak, code = _timed([kiln, "stats", str(big), "--out", "big.json"], tmp)
    print(
        f"kiln stats, {rows:,} rows streamed: {wall:8.3f} s, peak memory {peak:.2f} GB "
        f"(goal <= 1.0), exit code {code}"
    )


if __name__ == "__main__":
    main()
