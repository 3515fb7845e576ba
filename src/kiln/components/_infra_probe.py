"""The InfraValidator's probe, run in a fresh process::

    python -m kiln.components._infra_probe MODEL_DIR ROWS.parquet WARMUP

Loads the model (timing the imports and the load, as a server starting would), predicts WARMUP
times, then each row of ROWS alone and all of them as one batch; prints one JSON line: load_ms,
p50_ms, p99_ms (single rows), batch_ms, rows_predicted. Exit code 1 with the error on stderr when
anything fails.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    try:
        import numpy as np
        import pyarrow.parquet as pq

        from kiln.model import Model

        model = Model.load(argv[0])
        load_ms = (time.perf_counter() - started) * 1000
        rows = pq.read_table(argv[1])
        for _ in range(int(argv[2])):
            model.predict(rows.slice(0, 1))
        latencies = []
        predicted = 0
        for i in range(rows.num_rows):
            t0 = time.perf_counter()
            predicted += model.predict(rows.slice(i, 1)).num_rows
            latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        batch = model.predict(rows)
        batch_ms = (time.perf_counter() - t0) * 1000
    except Exception as e:  # the parent reports it: this process only says what happened
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    result = {
        "load_ms": round(load_ms, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
        "batch_ms": round(batch_ms, 3),
        "rows_predicted": min(predicted, batch.num_rows),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
