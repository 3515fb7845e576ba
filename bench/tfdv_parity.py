"""Drift scores against TensorFlow Data Validation itself, on the same data (same run).

TFDV cannot share Kiln's environment (it pins pyarrow < 11 and TensorFlow), so it runs in its own
Python, given with ``--tfdv-python``::

    python -m venv /tmp/tfdv && /tmp/tfdv/bin/pip install tensorflow-data-validation==1.16.1
    .venv/bin/python bench/tfdv_parity.py --tfdv-python /tmp/tfdv/bin/python

Baseline: the Palmer penguins. Current: a drifted copy (two thirds of the Adelie dropped, body mass
shifted by +400 g for one penguin in three). Both tools compute statistics, infer a schema, set a
drift comparator on every feature (L-infinity for categorical, Jensen-Shannon divergence for
numeric) and validate; the script prints each feature's score from both and the difference
(goal: within 0.005).
"""

from __future__ import annotations

import argparse
import csv
import importlib.resources
import json
import subprocess
import tempfile
import textwrap
from pathlib import Path

TFDV_CODE = textwrap.dedent(
    """
    import json, sys
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    base = tfdv.generate_statistics_from_csv(sys.argv[1])
    current = tfdv.generate_statistics_from_csv(sys.argv[2])
    schema = tfdv.infer_schema(base)
    for feature in schema.feature:
        comparator = tfdv.get_feature(schema, feature.name).drift_comparator
        if feature.type == schema_pb2.BYTES:
            comparator.infinity_norm.threshold = 1e-9
        else:
            comparator.jensen_shannon_divergence.threshold = 1e-9
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=base)
    scores = {}
    for info in anomalies.drift_skew_info:
        name = info.path.step[0]
        for m in info.drift_measurements:
            scores[name] = m.value
    print(json.dumps(scores))
    """
)


def write_data(folder: Path) -> tuple[Path, Path]:
    """The penguins with missing values as empty fields (both tools read those as missing)."""
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open() as f:
        rows = [[("" if v == "NA" else v) for v in row] for row in csv.reader(f)]
    header, body = rows[0], rows[1:]
    mass = header.index("body_mass_g")
    drifted = []
    for i, row in enumerate(body):
        if row[0] == "Adelie" and i % 3:
            continue
        row = list(row)
        if i % 3 == 0 and row[mass]:
            row[mass] = str(int(row[mass]) + 400)
        drifted.append(row)
    paths = folder / "baseline.csv", folder / "current.csv"
    for path, data in zip(paths, (body, drifted), strict=True):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([header, *data])
    return paths


def kiln_scores(baseline: Path, current: Path) -> dict[str, float]:
    from kiln.data import (
        generate_statistics,
        infer_schema,
        jensen_shannon_divergence,
        linf_distance,
        read_table,
    )

    base = generate_statistics(read_table(baseline)).dataset()
    cur = generate_statistics(read_table(current)).dataset()
    schema = infer_schema(base)
    scores: dict[str, float] = {}
    for feature in schema.features:
        a, b = cur.feature(feature.name), base.feature(feature.name)
        if a is None or b is None:
            continue
        categorical = feature.type in ("STRING", "BOOL", "BYTES")
        scores[feature.name] = (linf_distance if categorical else jensen_shannon_divergence)(a, b)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tfdv-python", required=True, help="a Python with TFDV installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline, current = write_data(Path(tmp))
        ours = kiln_scores(baseline, current)
        proc = subprocess.run(
            [args.tfdv_python, "-c", TFDV_CODE, str(baseline), str(current)],
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    worst = 0.0
    print(f"{'feature':20} {'Kiln':>10} {'TFDV':>10} {'difference':>11}")
    for name in sorted(set(ours) | set(theirs)):
        a, b = ours.get(name), theirs.get(name)
        diff = abs(a - b) if a is not None and b is not None else float("nan")
        worst = max(worst, diff) if diff == diff else worst
        print(
            f"{name:20} {a if a is not None else '-':>10.6} {b if b is not None else '-':>10.6} "
            f"{diff:>11.6f}"
        )
    print(f"largest difference: {worst:.6f} (goal <= 0.005)")


if __name__ == "__main__":
    main()
