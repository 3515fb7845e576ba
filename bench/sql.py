"""``kiln sql`` against Kiln's Python API on the same rows, measured in the same run.

Generates ``--rows`` rows (default 1,000,000) of ``workload`` from ``bench/training.py`` into the
warehouse of a fresh workspace (``bench.rows``): its 12 numeric columns, its four string columns
of 10 to 100 categories (the four wider ones, up to 1,000 categories, would make the linear
model's one-hot matrix 20 GB at a million rows, for either path) and the numeric label ``y``.
Then prints, as medians of ``--repeats``:

* ``ML.PREDICT``: ``SELECT * FROM ML.PREDICT(MODEL bench.m, TABLE bench.rows)`` through
  ``Connection.sql`` (DuckDB reads the rows into Arrow, the model predicts, the input columns
  come back beside the predictions) against ``Model.predict`` on the same rows already in
  memory as an Arrow table (the baseline). Goal: >= 0.8x its rows/s. A ``GROUP BY`` over the
  predictions is timed too (what an analyst runs).
* ``CREATE MODEL ... OPTIONS(model_type='linear_reg')`` on all the rows against the trainer
  called directly: ``Model.fit`` on the same Arrow table, same settings, same training and
  evaluation rows (BigQuery's AUTO_SPLIT). Goal: <= 1.2x its time. The SQL path also reads the
  rows from DuckDB, computes what ML.EVALUATE / ML.FEATURE_INFO return without data, saves and
  registers the model.

Run: ``.venv/bin/python bench/sql.py [--rows N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from training import workload  # bench/ is on sys.path when this file runs

from kiln.model import Model
from kiln.sql import connect
from kiln.sql._options import resolve_options, split_data
from kiln.workspace import Workspace

PREDICT_GOAL = 0.8
CREATE_GOAL = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = Workspace.init(Path(tmp))
        table = workload(args.rows)
        with connect(ws) as conn:
            table = table.select(
                [*(f"num_{i}" for i in range(12)), *(f"cat_{i}" for i in range(4)), "y"]
            )
            conn._db.register("bench_rows_arrow", table)  # loading is not what is measured
            conn.sql(
                "CREATE SCHEMA bench; CREATE TABLE bench.rows AS SELECT * FROM bench_rows_arrow"
            )
            conn._db.unregister("bench_rows_arrow")
            create = (
                "CREATE OR REPLACE MODEL bench.m OPTIONS(model_type='linear_reg', "
                "input_label_cols=['y']) AS SELECT * FROM bench.rows"
            )
            rows = conn.sql("SELECT * FROM bench.rows")
            assert rows is not None
            options = {"model_type": "linear_reg", "input_label_cols": ["y"]}
            resolved = resolve_options(options, rows.schema)
            train, evaluation = split_data(rows, resolved.split, label=resolved.label)

            def direct() -> Model:
                return Model.fit(
                    train,
                    model_type="linear_reg",
                    label="y",
                    settings=resolved.settings,
                    eval_table=evaluation,
                )

            sql_s, direct_s = [], []
            for _ in range(args.repeats):  # in turn, so a busy spell hits both
                t0 = time.perf_counter()
                conn.sql(create)
                t1 = time.perf_counter()
                model = direct()
                t2 = time.perf_counter()
                sql_s.append(t1 - t0)
                direct_s.append(t2 - t1)
            create_sql, create_direct = statistics.median(sql_s), statistics.median(direct_s)

            features = rows.drop_columns(["y"])
            model.predict(features.slice(0, 1000))  # warm up
            conn.sql("SELECT * FROM ML.PREDICT(MODEL bench.m, (SELECT * FROM bench.rows LIMIT 10))")
            predict_sql, predict_direct, grouped = [], [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = conn.sql("SELECT * FROM ML.PREDICT(MODEL bench.m, TABLE bench.rows)")
                t1 = time.perf_counter()
                model.predict(features)
                t2 = time.perf_counter()
                conn.sql(
                    "SELECT cat_0, AVG(predicted_y) AS p FROM ML.PREDICT(MODEL bench.m, "
                    "TABLE bench.rows) GROUP BY cat_0"
                )
                t3 = time.perf_counter()
                predict_sql.append(t1 - t0)
                predict_direct.append(t2 - t1)
                grouped.append(t3 - t2)
            assert out is not None
            assert out.num_rows == args.rows
    n = args.rows
    p_sql, p_direct = n / statistics.median(predict_sql), n / statistics.median(predict_direct)
    ratio_p = p_sql / p_direct
    ratio_c = create_sql / create_direct
    print(f"rows: {n:,}; medians of {args.repeats}")
    print(f"{'':42} {'kiln sql':>12} {'Python API':>12} {'ratio':>7} {'goal':>8}")
    met_p = "met" if ratio_p >= PREDICT_GOAL else "MISSED"
    met_c = "met" if ratio_c <= CREATE_GOAL else "MISSED"
    print(
        f"{'ML.PREDICT rows/s (vs Model.predict)':42} {p_sql:12,.0f} {p_direct:12,.0f} "
        f"{ratio_p:6.2f}x {'>= ' + str(PREDICT_GOAL) + 'x':>8} {met_p}"
    )
    print(f"{'  ... GROUP BY over ML.PREDICT rows/s':42} {n / statistics.median(grouped):12,.0f}")
    print(
        f"{'CREATE MODEL linear_reg s (vs Model.fit)':42} {create_sql:12.2f} {create_direct:12.2f} "
        f"{ratio_c:6.2f}x {'<= ' + str(CREATE_GOAL) + 'x':>8} {met_c}"
    )


if __name__ == "__main__":
    main()
