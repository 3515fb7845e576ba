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


def make_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(NUMERIC):
        x = rng.normal(loc=i, scale=1 + i, size=rows)
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
    print(f"statistics, Kiln                : {kiln:8.3f} s   ratio {kiln / floor:.2f}x the floor")


if __name__ == "__main__":
    main()
