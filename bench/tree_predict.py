"""Kiln's tree walker against LightGBM's own predictor, on the same boosters, in the same run.

Kiln predicts its boosted trees and random forests with a walker of its own
(``kiln.train._forest``, written in C in ``_treewalk.c``): the rows go through in blocks, tree by
tree, 16 rows walking a tree together without a branch. This prints, for each model, the rows/s
of ``Booster.predict(X, num_threads=1)`` (the baseline: LightGBM's C++ predictor) and of the
walker on the same matrix, one thread each, as medians of ``--repeats``; then their ratio
(> 1: the walker is faster), and checks that the raw scores are the same doubles.

The models (trained here, one thread):
- ``digits``: scikit-learn's digits, 10 classes, 64 numeric columns; 300 rounds of 31 leaves
  (3,000 trees).
- ``table``: ``make_table`` from ``bench/data_validation.py`` (``--rows`` rows, 12 numeric and 8
  string columns of 10-1000 values, which LightGBM splits as categories), a regression of 500
  rounds of 63 leaves.
- ``table-binary``: the same rows, a binary label, 200 rounds of 255 leaves.

Goal: >= 2x LightGBM on every model (issue 5 asks AutoML's ensembles to predict no slower than
FLAML's single model). Run: ``.venv/bin/python bench/tree_predict.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from data_validation import make_table  # bench/ is on sys.path when this file runs

from kiln.model import Model
from kiln.train._forest import CompiledForest


def _median_rows_per_s(fn: Callable[[], object], rows: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return rows / statistics.median(times)


def _fit(table: pa.Table, model_type: str, label: str, settings: dict[str, object]) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Model.fit(table, model_type=model_type, label=label, settings=settings)


def models(rows: int) -> list[tuple[str, Model, pa.Table]]:
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame
    digits["target"] = digits["target"].astype(str)
    digits_table = pa.Table.from_pandas(digits, preserve_index=False)
    table = make_table(rows, seed=0)
    numbers = np.nan_to_num(table["num_0"].to_numpy(zero_copy_only=False), posinf=0, neginf=0)
    strings = table.select([f"cat_{i}" for i in range(8)])
    features = pa.table({**{n: strings[n] for n in strings.column_names}, "num_0": numbers})
    rng = np.random.default_rng(1)
    y = numbers + rng.normal(size=rows) + (np.asarray(table["cat_0"]) == "category_0_0")
    regression = features.append_column("y", pa.array(y))
    binary = features.append_column("y", pa.array(np.where(y > np.median(y), "yes", "no")))
    common = {"early_stop": False}
    return [
        (
            "digits",
            _fit(
                digits_table,
                "boosted_tree_classifier",
                "target",
                {**common, "max_iterations": 300, "num_leaves": 31},
            ),
            digits_table,
        ),
        (
            "table",
            _fit(
                regression,
                "boosted_tree_regressor",
                "y",
                {**common, "max_iterations": 500, "num_leaves": 63},
            ),
            regression,
        ),
        (
            "table-binary",
            _fit(
                binary,
                "boosted_tree_classifier",
                "y",
                {**common, "max_iterations": 200, "num_leaves": 255},
            ),
            binary,
        ),
    ]


def measure(name: str, model: Model, table: pa.Table, repeats: int) -> float:
    """Print one model's line; return the walker's rows/s over LightGBM's."""
    booster = model.trainer.booster_  # type: ignore[attr-defined]
    X = np.ascontiguousarray(model.transform.transform(table).X, dtype=np.float64)
    forest = CompiledForest(booster.model_to_string())
    raw = forest.raw(X)
    if not np.array_equal(
        raw, booster.predict(X, raw_score=True, num_threads=1).reshape(raw.shape)
    ):
        raise SystemExit(f"{name}: the walker's raw scores differ from LightGBM's")
    n = X.shape[0]
    lightgbm = _median_rows_per_s(lambda: booster.predict(X, num_threads=1), n, repeats)
    walker = _median_rows_per_s(lambda: forest.predict(X), n, repeats)
    print(
        f"{name:<14} {booster.num_trees():>6} {n:>8} {lightgbm:>16,.0f} {walker:>14,.0f}"
        f"  {walker / lightgbm:.2f}x"
    )
    return walker / lightgbm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'model':<14} {'trees':>6} {'rows':>8} {'LightGBM rows/s':>16} {'walker rows/s':>14}")
    ratios = [measure(*named, args.repeats) for named in models(args.rows)]
    print(f"median ratio (walker / LightGBM, one thread): {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
