"""The prediction log: a sampled record of requests and answers, for monitoring.

Each sampled request is one record (timestamp, model, version, rows, latency in milliseconds,
inputs and outputs as JSON text: the request's own instances or tensors and the answer's). Records
are buffered and written as a new Parquet file under ``.kiln/predictions/`` of the workspace every
``flush_every`` records or ``flush_seconds`` (by the server's background thread) and on shutdown;
when the folder grows over ``max_bytes`` the oldest files go. A file is written under a temporary
name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PredictionLog"]


class PredictionLog:
    def __init__(
        self,
        folder: Path,
        rate: float,
        *,
        dumps: Callable[[Any], bytes],
        max_bytes: int = 256 * 1024 * 1024,
        flush_every: int = 10_000,
        flush_seconds: float = 10.0,
    ) -> None:
        self.folder = folder
        self.rate = rate
        self.dumps = dumps
        self.max_bytes = max_bytes
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._records: list[tuple[float, str, str, int, float, str, str]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._random = random.Random()  # noqa: S311 - sampling, not security

    def maybe(
        self, model: str, version: str, rows: int, inputs: Any, outputs: Any, started: float
    ) -> None:
        """Record one answered request with probability ``rate``."""
        if self.rate < 1.0 and self._random.random() >= self.rate:
            return
        latency_ms = (time.perf_counter() - started) * 1000.0
        record = (
            time.time(),
            model,
            version,
            rows,
            latency_ms,
            self.dumps(inputs).decode(),
            self.dumps(outputs).decode(),
        )
        with self._lock:
            self._records.append(record)
            full = len(self._records) >= self.flush_every
        if full:
            self.flush()

    def tick(self) -> None:
        """Flush when the oldest buffered record is older than ``flush_seconds``."""
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> Path | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._lock:
            records, self._records = self._records, []
            self._last_flush = time.monotonic()
        if not records:
            return None
        columns = list(zip(*records, strict=True))
        table = pa.table(
            {
                "timestamp": pa.array(
                    [int(t * 1000) for t in columns[0]], type=pa.timestamp("ms", tz="UTC")
                ),
                "model": pa.array(columns[1], pa.string()),
                "version": pa.array(columns[2], pa.string()),
                "rows": pa.array(columns[3], pa.int64()),
                "latency_ms": pa.array(columns[4], pa.float64()),
                "inputs": pa.array(columns[5], pa.string()),
                "outputs": pa.array(columns[6], pa.string()),
            }
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"predictions-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        final = self.folder / f"{name}-{time.monotonic_ns() % 10**9:09d}.parquet"
        staging = final.with_name("." + final.name + ".tmp")
        pq.write_table(table, staging, compression="zstd")
        os.replace(staging, final)
        self._bound()
        return final

    def _bound(self) -> None:
        files = sorted(
            self.folder.glob("predictions-*.parquet"), key=lambda p: p.stat().st_mtime_ns
        )
        total = sum(p.stat().st_size for p in files)
        while files and total > self.max_bytes and len(files) > 1:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
