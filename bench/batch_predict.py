"""Batch prediction's throughput: ``predict_batches`` from a Parquet file to a Parquet file against
``Model.predict`` on the same rows already in memory (the baseline), measured in the same run.

Generates ``--rows`` rows (default 1,000,000) of ``workload`` from ``bench/training.py`` (12
numeric and 8 string columns, and a numeric label ``y``; a class label ``y_class``, ``high`` or
``low``, is added for the classifier) and writes them as one Parquet file, labels included, as
data to score usually has columns the model does not use. Then, for a ``boosted_tree_regressor``
and a ``logistic_reg`` (its output has the class-probability lists), both trained on
``--train-rows`` and predicting every row, prints as medians of ``--repeats``:

* ``Model.predict(table)`` rows/s, the table in memory (the baseline);
* ``predict_batches(model, input.parquet, output.parquet)`` rows/s, end to end: read, predict,
  write, rename; the ratio to the baseline (goal >= 0.90x);
* the floor of reading and writing alone: the same input streamed and the baseline's predictions
  (class labels as the dictionary arrays that ``predict_batches`` writes)
  written batch by batch with the same writer, no model: where the time beyond prediction goes.

Run: ``.venv/bin/python bench/batch_predict.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from training import workload  # bench/ is on sys.path when this file runs

from kiln.data import iter_batches
from kiln.model import Model, predict_batches
from kiln.model._batch import _predicted, _Writer  # the floor writes as predict_batches does

GOAL = 0.9


def read_write_floor(
    source: Path, columns: list[str], predictions: pa.Table, out: Path, batch_size: int
) -> None:
    """What predict_batches does but predict: stream the model's columns of ``source`` and write
    ``predictions`` batch by batch with the same writer."""
    done = 0
    with out.open("wb") as sink:
        writer = _Writer("parquet", sink, encoded=predictions.column_names)
        for batch in iter_batches(source, batch_size=batch_size, columns=columns):
            writer.write(predictions.slice(done, batch.num_rows))
            done += batch.num_rows
        writer.close()


def measure(
    model: Model, table: pa.Table, source: Path, folder: Path, batch_size: int, repeats: int
) -> tuple[float, float, float]:
    """Median seconds of the baseline, of predict_batches and of the read+write floor; the three
    are taken in turn in each round, so that a busy spell on the machine hits all of them."""
    out = folder / "predictions.parquet"
    columns = [str(c["name"]) for c in model.signature]
    model.predict(table.slice(0, 1000))  # warm up
    predictions = model.predict(table)
    as_written = _predicted(model, table, 0, source, True)  # what its Parquet writer is handed
    rounds: list[tuple[float, float, float]] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(table)
        t1 = time.perf_counter()
        predict_batches(model, source, out, batch_size=batch_size, overwrite=True)
        t2 = time.perf_counter()
        read_write_floor(source, columns, as_written, folder / "floor.parquet", batch_size)
        t3 = time.perf_counter()
        rounds.append((t1 - t0, t2 - t1, t3 - t2))
    assert pq.read_table(out).equals(predictions), "predict_batches wrote other predictions"
    base_s, batch_s, floor_s = (statistics.median(r[i] for r in rounds) for i in range(3))
    return base_s, batch_s, floor_s


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = workload(args.rows)
    median = pc.approximate_median(table["y"]).as_py()
    table = table.append_column(
        "y_class", pc.if_else(pc.greater(table["y"], median), "high", "low")
    )
    print(
        f"data: {table.num_rows:,} rows x {table.num_columns - 2} columns + 2 labels "
        f"({time.perf_counter() - t0:.1f} s to generate)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "input.parquet"
        pq.write_table(table, source)
        rows = table.num_rows
        for model_type, label in (("boosted_tree_regressor", "y"), ("logistic_reg", "y_class")):
            train = table.slice(0, args.train_rows).drop_columns(
                [c for c in ("y", "y_class") if c != label]
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = Model.fit(train, model_type=model_type, label=label)
            base_s, batch_s, floor_s = measure(
                model, table, source, folder, args.batch_size, args.repeats
            )
            base, batch, floor = rows / base_s, rows / batch_s, rows / floor_s
            ratio = batch / base
            verdict = "meets" if ratio >= GOAL else "MISSES"
            print(
                f"{model_type:<22} ({rows:,} rows, batch {args.batch_size:,}): "
                f"Model.predict in memory (baseline) {base:11,.0f} rows/s ({base_s:.2f} s); "
                f"predict_batches parquet -> parquet {batch:11,.0f} rows/s ({batch_s:.2f} s)   "
                f"ratio {ratio:.2f}x (goal >= {GOAL:.2f}x: {verdict}); read+write alone, no "
                f"predict (floor) {floor:11,.0f} rows/s ({floor_s:.2f} s)"
            )


if __name__ == "__main__":
    main()
