"""The fallback load generator of ``bench/serving.py``, used only where ``wrk`` is not installed.

Raw asyncio streams, one keep-alive HTTP/1.1 connection per concurrent client, each sending the
next prepared request as soon as the previous answer is read (closed loop, like ``wrk``). Runs
in its own process (pinned by the parent), prints one JSON line in the shape of the ``wrk``
script's summary: requests, duration, errors and latency percentiles in microseconds.

    python bench/_serving_load.py HOST PORT PATH BODIES_FILE CONNECTIONS SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def client(
    host: str, port: int, requests: list[bytes], deadline: float, out: dict[str, list[int]]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    latencies, errors = out["latency"], out["errors"]
    i = 0
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter_ns()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter_ns() - t0) // 1000)
            if not head.startswith(b"HTTP/1.1 2"):
                errors.append(1)
    finally:
        writer.close()


async def main(host: str, port: int, path: str, bodies: str, conns: int, seconds: float) -> None:
    requests = []
    with open(bodies, "rb") as f:
        for body in f.read().splitlines():
            requests.append(
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
    out: dict[str, list[int]] = {"latency": [], "errors": []}
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(*(client(host, port, requests, deadline, out) for _ in range(conns)))
    elapsed = time.perf_counter() - t0
    lat = sorted(out["latency"]) or [0]

    def pct(q: float) -> float:
        return float(lat[min(len(lat) - 1, int(q / 100 * len(lat)))])

    summary = {
        "requests": len(out["latency"]),
        "duration_us": int(elapsed * 1e6),
        "errors": {"status": len(out["errors"])},
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "mean_us": sum(lat) / len(lat),
        "max_us": float(lat[-1]),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    h, p, path, bodies, c, s = sys.argv[1:7]
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(h, int(p), path, bodies, int(c), float(s)))
