"""Online serving: ``kiln serve`` against FastAPI + pydantic and MLServer 1.7, measured in one run.

The spec is the "Performance" section of issue 7. Model: a Kiln LightGBM binary classifier
(``Model.fit(train, model_type="boosted_tree_classifier", label="target")``) on scikit-learn's
``breast_cancer`` (30 numeric features), split 80/20 (seed 0, stratified), saved to a folder in a
temporary directory. Requests carry test rows: one row, or 100 rows, cycling over the test set.

Servers, one at a time, each one process pinned to CPU 0 (``taskset``; the load generator gets
CPU 1), with one thread for the model (``OMP_NUM_THREADS=1``):

- ``kiln``: ``kiln serve bc=FOLDER --host 127.0.0.1 --port P --workers 1``, measured on both of
  its endpoints: ``kiln-v1`` (``POST /v1/models/bc:predict``, ``{"instances": [{feature: value}]}``,
  the FastAPI baseline's request) and ``kiln-v2`` (``POST /v2/models/bc/infer``, one 2-D FP64
  tensor ``[rows, 30]`` in signature order, MLServer's request);
- ``fastapi``: ``bench/_serving_fastapi.py``, a minimal FastAPI + pydantic endpoint (30 ``float``
  fields) with the same booster loaded from the model folder's ``estimator/model.txt`` and called
  directly, one uvicorn worker;
- ``mlserver``: MLServer 1.7 with its LightGBM runtime on the same ``model.txt``, inference in
  the server process (``parallel_workers=0``), the V2 protocol;
- ``floor``: ``Model.predict`` on a one-row (and a 100-row) Arrow table in this process (pinned to
  CPU 0 while it runs), with no HTTP; ``floor-rows``: ``Model.predict_rows`` on one (and 100)
  rows as dicts, the few-row path that ``kiln serve`` takes (no Arrow table); ``floor-lgb``: the
  bare booster's ``predict`` on a [1, 30] NumPy array, the model's own cost (what the FastAPI
  and MLServer baselines call);
- ``loopback``: ``bench/_serving_loopback.py``, a raw asyncio server that answers ``{}`` without
  parsing anything: in the same run, the round trip that loopback and the load generator cost
  (no server can go below it) and the rate the load generator reaches (it must stay well above
  every server's, or the load generator is the bottleneck).

Servers run in the run's temporary folder (nothing is written in the repository).
The peers live in their own virtual environment, ``bench/.serving-venv`` (git-ignored), created
on first use or with ``--setup``; never Kiln's dependencies. Nothing here loads a pickle: the
peers read the booster's text file.

For each server (after checking that its answers carry the same probabilities as
``Model.predict``, and a 1 s warm-up): time from process start to ``GET /v2/health/ready``
answering 200; p50/p99 latency at concurrency 1 (single-row requests); req/s at concurrency 16
(single-row), with the server's CPU time per request (utime + stime of its process tree, from
``/proc``, before and after, over the requests served); rows/s with 100-row requests at
concurrency 16; and how much of a core the server used at concurrency 16 (CPU time / wall time:
under ~0.95, other processes took part of its core, which lowers its req/s but not its CPU per
request). Each measurement lasts ``--duration`` seconds (default 5); ``--repeats N`` runs each N
times and keeps the best (lowest p50, highest rate) on a busy machine. The load generator is
``wrk`` (Debian's package) with a Lua script that rotates the prepared bodies and checks
statuses; without ``wrk``, ``bench/_serving_load.py`` (raw asyncio sockets, keep-alive), slower.
Printed: the table, each Kiln endpoint's ratios against each baseline, and the issue's goals
(p50 <= 0.25 ms; >= 2,500 req/s, >= 3x MLServer, >= 2x FastAPI; <= 200 us CPU per request;
>= 100k rows/s with 100-row requests; ready in <= 2 s) with met / missed. Servers are killed
(their whole process group) at the end of each, on errors and on Ctrl-C.

Run (two shared cores: the load average is printed; results from a busy machine are noisy)::

    apt-get install wrk                                       # once (else the slower fallback)
    .venv/bin/python bench/serving.py --setup                 # once: the peers' venv
    .venv/bin/python bench/serving.py                         # about 2 minutes
    .venv/bin/python bench/serving.py --repeats 3             # busy machine: best of 3, ~5 min
    .venv/bin/python bench/serving.py --servers kiln,mlserver --duration 10 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SERVING_VENV = HERE / ".serving-venv"
FASTAPI_SERVER = HERE / "_serving_fastapi.py"
FALLBACK_LOAD = HERE / "_serving_load.py"
LOOPBACK_SERVER = HERE / "_serving_loopback.py"
SERVERS = ("loopback", "floor", "fastapi", "mlserver", "kiln")
MODEL_NAME = "bc"
BATCH_ROWS = 100
CONCURRENCY = 16
SERVER_CPU, LOAD_CPU = "0", "1"
READY_TIMEOUT_S = 60.0
PEER_REQUIREMENTS = (
    "mlserver==1.7.1",
    "mlserver-lightgbm==1.7.1",
    "uvloop<0.22",  # MLServer 1.7 does not start with uvloop 0.22
    "fastapi==0.115.14",
    "uvicorn==0.54.0",
    "httptools",
    "lightgbm==4.7.0",
)
ONE_THREAD = {
    name: "1"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")
}
GOALS = {
    "p50_ms": 0.25,
    "rps": 2500.0,
    "vs_mlserver": 3.0,
    "vs_fastapi": 2.0,
    "cpu_us": 200.0,
    "rows_per_s": 100_000.0,
    "ready_s": 2.0,
}
WRK_SCRIPT = r"""
local requests, i = {}, 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local headers = {["Content-Type"] = "application/json"}
    requests[#requests + 1] = wrk.format("POST", args[2], headers, line)
  end
  f:close()
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
done = function(s, latency, _)
  local e = s.errors
  io.write(string.format(
    '\nBENCH {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}, "p50_us": %f, "p90_us": %f, '
      .. '"p99_us": %f, "mean_us": %f, "max_us": %f}\n',
    s.requests, s.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
"""


# ---------------------------------------------------------------------------------- set-up


def setup(venv: Path) -> None:
    """Create the peers' virtual environment and install FastAPI, uvicorn and MLServer in it."""
    if not (venv / "bin" / "python").exists():
        print(f"creating {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {' '.join(PEER_REQUIREMENTS)} into {venv}", flush=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEER_REQUIREMENTS], check=True)


@dataclass
class Workload:
    """The model folder, the test rows and the request bodies of every protocol."""

    folder: Path
    features: list[str]
    test: pa.Table  # features only
    expected: list[float]  # Model.predict's probability of class 1, per test row
    bodies: dict[tuple[str, int], Path] = field(default_factory=dict)  # (protocol, rows) -> file


def make_workload(work: Path) -> Workload:
    """Fit and save the model, and write one file of request bodies (one a line) per protocol
    and request size."""
    import warnings

    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    from kiln.model import Model

    frame = sklearn.datasets.load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["target"])
    train_table = pa.Table.from_pandas(train.reset_index(drop=True), preserve_index=False)
    test_table = pa.Table.from_pandas(test.reset_index(drop=True), preserve_index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(train_table, model_type="boosted_tree_classifier", label="target")
    folder = model.save(work / "model")
    features = [c for c in test_table.column_names if c != "target"]
    test_features = test_table.select(features)
    out = model.predict(test_features)
    probs = out.column(out.column_names[-1]).to_pylist()
    expected = [next(p["prob"] for p in row if p["label"] == 1) for row in probs]
    workload = Workload(folder, features, test_features, expected)
    rows = test_features.to_pylist()
    n = len(rows)
    for size in (1, BATCH_ROWS):
        starts = range(n) if size == 1 else range(0, n, 7)  # 100-row windows, wrapping around
        chunks = [[rows[(s + k) % n] for k in range(size)] for s in starts]
        for protocol in ("v1", "v2"):
            path = work / f"bodies-{protocol}-{size}.txt"
            with path.open("w") as f:
                for chunk in chunks:
                    f.write(json.dumps(request_body(protocol, chunk, features)) + "\n")
            workload.bodies[protocol, size] = path
    return workload


def request_body(protocol: str, rows: list[dict[str, float]], features: list[str]) -> Any:
    if protocol == "v1":  # Vertex AI style: instances as objects
        return {"instances": rows}
    flat = [row[f] for row in rows for f in features]  # V2: one [rows, 30] FP64 tensor
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(features)],
                        "datatype": "FP64", "data": flat}]}  # fmt: skip


# ---------------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A server to start: its command, environment, and its endpoints (label -> protocol, path)."""

    name: str
    command: list[str]
    env: dict[str, str]
    endpoints: dict[str, tuple[str, str]]
    port: int
    check: bool = True  # whether its answers must carry Model.predict's probabilities


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_server(python: Path) -> Server:
    port = free_port()
    command = [str(python), str(LOOPBACK_SERVER), "127.0.0.1", str(port)]
    path = f"/v1/models/{MODEL_NAME}:predict"
    return Server("loopback", command, {}, {"loopback": ("v1", path)}, port, check=False)


def fastapi_server(python: Path, workload: Workload, work: Path) -> Server:
    port = free_port()
    features_json = work / "features.json"
    features_json.write_text(json.dumps(workload.features))
    model_txt = workload.folder / "estimator" / "model.txt"
    command = [str(python), str(FASTAPI_SERVER), str(model_txt), str(features_json)]
    command += [MODEL_NAME, "127.0.0.1", str(port)]
    path = f"/v1/models/{MODEL_NAME}:predict"
    return Server("fastapi", command, {}, {"fastapi": ("v1", path)}, port)


def mlserver_server(python: Path, workload: Workload, work: Path) -> Server:
    root = work / "mlserver"
    model_dir = root / MODEL_NAME
    model_dir.mkdir(parents=True)
    shutil.copy2(workload.folder / "estimator" / "model.txt", model_dir / "model.txt")
    port = free_port()
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,  # inference in the server process
    }
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt", "version": "1"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    command = [str(python.parent / "mlserver"), "start", str(root)]
    path = f"/v2/models/{MODEL_NAME}/infer"
    return Server("mlserver", command, {}, {"mlserver": ("v2", path)}, port)


def kiln_server(workload: Workload) -> Server:
    port = free_port()
    kiln = Path(sys.executable).parent / "kiln"
    command = [str(kiln), "serve", f"{MODEL_NAME}={workload.folder}", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    endpoints = {
        "kiln-v1": ("v1", f"/v1/models/{MODEL_NAME}:predict"),
        "kiln-v2": ("v2", f"/v2/models/{MODEL_NAME}/infer"),
    }
    return Server("kiln", command, {}, endpoints, port)


def tree_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants, in seconds (from /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    tick = os.sysconf("SC_CLK_TCK")
    total, frontier = 0.0, [pid]
    while frontier:
        p = frontier.pop()
        if p in stats:
            total += stats[p][1] / tick
        frontier.extend(c for c, (parent, _) in stats.items() if parent == p)
    return total


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def running(
    server: Server, log: Path, pin: bool
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start the server in its own process group, wait until ready, yield (process, ready
    seconds); kill the group however the block ends."""
    command = (["taskset", "-c", SERVER_CPU] if pin else []) + server.command
    env = {**os.environ, **ONE_THREAD, **server.env}
    env.pop("PYTHONPATH", None)
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,  # the run's temporary folder: nothing written in the repository
            start_new_session=True,
        )
    try:
        ready = wait_ready(proc, server.port, t0)
        yield proc, ready
    finally:
        stop(proc)


def wait_ready(proc: subprocess.Popen[bytes], port: int, t0: float) -> float:
    while time.perf_counter() - t0 < READY_TIMEOUT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            if call(port, "GET", "/v2/health/ready")[0] == 200:
                return time.perf_counter() - t0
        time.sleep(0.005)
    raise RuntimeError(f"not ready after {READY_TIMEOUT_S:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------------------------- load


def load(
    port: int, path: str, bodies: Path, connections: int, seconds: int, pin: bool, work: Path
) -> dict[str, Any]:
    """One closed-loop run of ``connections`` keep-alive clients for ``seconds``: wrk's summary."""
    prefix = ["taskset", "-c", LOAD_CPU] if pin else []
    wrk = None if os.environ.get("BENCH_NO_WRK") else shutil.which("wrk")
    if wrk:
        script = work / "bench.lua"
        if not script.exists():
            script.write_text(WRK_SCRIPT)
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
        command += ["-s", str(script), f"http://127.0.0.1:{port}", "--", str(bodies), path]
    else:
        command = [sys.executable, str(FALLBACK_LOAD), "127.0.0.1", str(port), path]
        command += [str(bodies), str(connections), str(seconds)]
    proc = subprocess.run(
        prefix + command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("BENCH ", "{"))]
    if proc.returncode or not lines:
        raise RuntimeError(f"load generator failed: {(proc.stdout + proc.stderr)[-500:]}")
    summary: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH "))
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["errors_total"] = sum(summary["errors"].values())
    return summary


def floats_in(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in floats_in(v)]
    if isinstance(value, list):
        return [x for v in value for x in floats_in(v)]
    return []


def check_answers(port: int, path: str, protocol: str, workload: Workload) -> str:
    """'' when the answers to the first one-row and 100-row bodies carry Model.predict's
    probability of class 1 for every row (anywhere in the JSON: each server has its own
    shape), else what is wrong."""
    for size in (1, BATCH_ROWS):
        body = workload.bodies[protocol, size].read_text().splitlines()[0].encode()
        status, answer = call(port, "POST", path, body)
        if status != 200:
            return f"{size}-row request: HTTP {status}: {answer[:300]!r}"
        found = floats_in(json.loads(answer))
        n = len(workload.expected)
        for k in range(size):
            want = workload.expected[k % n]
            if not any(math.isclose(x, want, rel_tol=1e-9, abs_tol=1e-12) for x in found):
                return f"{size}-row request: row {k}'s probability {want!r} not in the answer"
    return ""


def measure_endpoint(
    label: str,
    protocol: str,
    path: str,
    proc: subprocess.Popen[bytes],
    port: int,
    workload: Workload,
    args: argparse.Namespace,
    work: Path,
    check: bool,
) -> dict[str, Any]:
    record: dict[str, Any] = {"server": label, "protocol": protocol, "path": path}
    record["load_before"] = os.getloadavg()[0]
    problem = check_answers(port, path, protocol, workload) if check else ""
    if problem:
        record["error"] = f"answers disagree with Model.predict: {problem}"
        return record
    one, batch = workload.bodies[protocol, 1], workload.bodies[protocol, BATCH_ROWS]
    pin, seconds = not args.no_pin, args.duration

    def run(bodies: Path, connections: int) -> dict[str, Any]:
        """The load run, with the server's CPU time over it (process tree, from /proc)."""
        cpu0 = tree_cpu_s(proc.pid)
        summary = load(port, path, bodies, connections, seconds, pin, work)
        summary["cpu_s"] = tree_cpu_s(proc.pid) - cpu0
        return summary

    def best(bodies: Path, connections: int, key: Callable[[dict[str, Any]], float]) -> Any:
        runs = [run(bodies, connections) for _ in range(args.repeats)]
        return min(runs, key=key), sum(r["errors_total"] for r in runs)

    load(port, path, one, CONCURRENCY, 1, pin, work)  # warm-up
    c1, e1 = best(one, 1, lambda r: r["p50_us"])
    c16, e16 = best(one, CONCURRENCY, lambda r: -r["rps"])
    rows, e100 = best(batch, CONCURRENCY, lambda r: -r["rps"])
    record.update(
        p50_ms=c1["p50_us"] / 1e3,
        p99_ms=c1["p99_us"] / 1e3,
        c1_rps=c1["rps"],
        rps=c16["rps"],
        c16_p99_ms=c16["p99_us"] / 1e3,
        cpu_us=c16["cpu_s"] / max(c16["requests"], 1) * 1e6,
        cores=c16["cpu_s"] / (c16["duration_us"] / 1e6),
        rows_per_s=rows["rps"] * BATCH_ROWS,
        errors=e1 + e16 + e100,
        load_after=os.getloadavg()[0],
    )
    return record


def measure_server(
    server: Server, workload: Workload, args: argparse.Namespace, work: Path
) -> list[dict[str, Any]]:
    log = work / f"{server.name}.log"
    print(f"  starting {server.name}: {' '.join(server.command)}", flush=True)
    records = []
    try:
        with running(server, log, not args.no_pin) as (proc, ready_s):
            print(f"    ready in {ready_s:.2f} s", flush=True)
            for label, (protocol, path) in server.endpoints.items():
                record = measure_endpoint(
                    label, protocol, path, proc, server.port, workload, args, work, server.check
                )
                record["ready_s"] = ready_s
                records.append(record)
                print_progress(record)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        tail = log.read_text(errors="replace").strip().splitlines()[-12:] if log.exists() else []
        print(f"    {server.name} failed: {exc}", flush=True)
        for line in tail:
            print(f"      | {line}", flush=True)
        done = {r["server"] for r in records}
        records += [
            {"server": label, "error": str(exc), "log_tail": tail}
            for label in server.endpoints
            if label not in done
        ]
    return records


def time_in_process(
    label: str, predict: Callable[[Any], Any], ones: list[Any], batches: list[Any], seconds: float
) -> dict[str, Any]:
    """One-row latency (p50/p99 over ``seconds``), CPU per call, and rows/s over 100-row inputs
    of a predict function called in this process."""
    for x in ones[:50]:
        predict(x)
    times: list[float] = []
    cpu0, end, i = time.process_time(), time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        predict(ones[i % len(ones)])
        times.append(time.perf_counter() - t0)
        i += 1
    cpu = time.process_time() - cpu0
    calls, t0, end = 0, time.perf_counter(), time.perf_counter() + seconds
    while time.perf_counter() < end:
        predict(batches[calls % len(batches)])
        calls += 1
    rows_per_s = calls * BATCH_ROWS / (time.perf_counter() - t0)
    times.sort()
    return {
        "server": label,
        "protocol": "in-process",
        "p50_ms": statistics.median(times) * 1e3,
        "p99_ms": times[int(0.99 * (len(times) - 1))] * 1e3,
        "c1_rps": len(times) / sum(times),
        "cpu_us": cpu / len(times) * 1e6,
        "rows_per_s": rows_per_s,
        "errors": 0,
    }


def measure_floor(workload: Workload, seconds: int, pin: bool) -> list[dict[str, Any]]:
    """The floors, in this process (pinned to the servers' CPU while they run): ``floor``,
    ``Model.predict`` on one-row and 100-row Arrow tables (validation, transform, post-processing
    included), ``floor-rows``, ``Model.predict_rows`` on the same rows as dicts (the few-row
    path), and ``floor-lgb``, the bare booster's ``predict`` on a [1, 30] / [100, 30] NumPy
    array (the model's own cost: what the FastAPI and MLServer baselines call)."""
    import lightgbm as lgb
    import numpy as np

    from kiln.model import Model

    model = Model.load(workload.folder)
    booster = lgb.Booster(model_file=str(workload.folder / "estimator" / "model.txt"))
    n = workload.test.num_rows
    ones = [workload.test.slice(i, 1) for i in range(n)]
    windows = [[(s + k) % n for k in range(BATCH_ROWS)] for s in range(0, n, 7)]
    batches = [workload.test.take(w) for w in windows]
    matrix = np.column_stack([workload.test.column(f).to_numpy() for f in workload.features])
    before = os.sched_getaffinity(0)
    if pin:
        os.sched_setaffinity(0, {int(SERVER_CPU)})
    try:
        return [
            time_in_process("floor", model.predict, ones, batches, seconds),
            time_in_process(
                "floor-rows",
                model.predict_rows,
                [t.to_pylist() for t in ones],
                [t.to_pylist() for t in batches],
                seconds,
            ),
            time_in_process(
                "floor-lgb",
                lambda x: booster.predict(x, num_threads=1),
                [matrix[i : i + 1] for i in range(n)],
                [matrix[w] for w in windows],
                seconds,
            ),
        ]
    finally:
        os.sched_setaffinity(0, before)


# ---------------------------------------------------------------------------------- report


def print_progress(r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"    {r['server']}: {r['error']}", flush=True)
        return
    rps = f"c={CONCURRENCY} {r['rps']:,.0f} req/s  " if "rps" in r else ""
    print(
        f"    {r['server']:9} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
        f"{rps}CPU {r['cpu_us']:.0f} us/req"
        + (f" ({r['cores']:.2f} cores)  " if "cores" in r else "  ")
        + f"{r['rows_per_s']:,.0f} rows/s  errors {r['errors']}"
        + (f"  (load {r['load_before']:.1f})" if "load_before" in r else ""),
        flush=True,
    )


def report(records: list[dict[str, Any]]) -> None:
    ok = {r["server"]: r for r in records if "error" not in r}
    print("\n=== serving: LightGBM on breast_cancer, one worker, requests on loopback ===")
    columns = [  # (title, key, format, unit)
        ("p50 c=1", "p50_ms", ".3f", " ms"),
        ("p99 c=1", "p99_ms", ".2f", " ms"),
        ("req/s c=1", "c1_rps", ",.0f", ""),
        (f"req/s c={CONCURRENCY}", "rps", ",.0f", ""),
        (f"p99 c={CONCURRENCY}", "c16_p99_ms", ".2f", " ms"),
        ("CPU/req", "cpu_us", ".0f", " us"),
        ("cores c=16", "cores", ".2f", ""),
        ("rows/s x100", "rows_per_s", ",.0f", ""),
        ("ready", "ready_s", ".2f", " s"),
        ("errors", "errors", "d", ""),
    ]
    print(f"{'server':10}" + "".join(f"{title:>12}" for title, *_ in columns))
    for r in records:
        if "error" in r:
            print(f"{r['server']:10}  failed: {r['error'][:100]}")
            continue
        cells = [
            "-" if r.get(key) is None else format(r[key], spec) + unit
            for _, key, spec, unit in columns
        ]
        print(f"{r['server']:10}" + "".join(f"{cell:>12}" for cell in cells))
    print(
        "(floor: Model.predict in-process, no HTTP; floor-rows: Model.predict_rows, the few-row "
        "path; floor-lgb: the bare booster; for these, req/s "
        "c=1 is calls/s and CPU/req is per one-row call; for servers, CPU/req is the process "
        "tree's CPU time / requests at c=16, and cores c=16 its CPU time / wall time (below ~0.95: "
        "the server did not get its whole core, so its req/s is low; CPU/req is the steadier "
        "figure on a shared machine); loopback: a raw server answering {} without "
        "reading the body: the round trip and load generator's rate, no server beats it)"
    )

    kilns = [k for k in ("kiln-v1", "kiln-v2") if k in ok]
    bases = [b for b in ("fastapi", "mlserver", "floor", "floor-rows", "floor-lgb") if b in ok]
    if kilns and bases:
        print("\nratios (> 1: Kiln is better): p50 base/K, req/s K/base, CPU base/K, rows/s K/base")
        for k in kilns:
            for b in bases:
                K, B = ok[k], ok[b]
                cells = [
                    f"p50 {B['p50_ms'] / K['p50_ms']:.2f}x",
                    f"req/s {K['rps'] / B['rps']:.2f}x" if "rps" in B else "",
                    f"CPU {B['cpu_us'] / K['cpu_us']:.2f}x",
                    f"rows/s {K['rows_per_s'] / B['rows_per_s']:.2f}x",
                ]
                if "ready_s" in B:
                    cells.append(f"ready {B['ready_s'] / K['ready_s']:.2f}x")
                print(f"  {k} vs {b:9} " + "  ".join(c for c in cells if c))
    if not kilns:
        print("\nKiln's server was not measured: no ratios, no goals")
        return
    print("\ngoals (issue 7, one worker):")
    for k in kilns:
        K = ok[k]
        checks = [
            (f"p50 at c=1 <= {GOALS['p50_ms']} ms", K["p50_ms"], K["p50_ms"] <= GOALS["p50_ms"]),
            (
                f">= {GOALS['rps']:,.0f} req/s at c={CONCURRENCY}",
                K["rps"],
                K["rps"] >= GOALS["rps"],
            ),
        ]
        for b, goal in (("mlserver", "vs_mlserver"), ("fastapi", "vs_fastapi")):
            if b in ok:
                ratio = K["rps"] / ok[b]["rps"]
                checks.append((f">= {GOALS[goal]:g}x {b} req/s", ratio, ratio >= GOALS[goal]))
        checks += [
            (
                f"CPU/request <= {GOALS['cpu_us']:.0f} us",
                K["cpu_us"],
                K["cpu_us"] <= GOALS["cpu_us"],
            ),
            (
                f">= {GOALS['rows_per_s']:,.0f} rows/s (100-row requests)",
                K["rows_per_s"],
                K["rows_per_s"] >= GOALS["rows_per_s"],
            ),
            (f"ready <= {GOALS['ready_s']:g} s", K["ready_s"], K["ready_s"] <= GOALS["ready_s"]),
            ("zero errors", K["errors"], K["errors"] == 0),
        ]
        for text, value, met in checks:
            shown = f"{value:,.3f}" if isinstance(value, float) and value < 100 else f"{value:,.0f}"
            print(f"  {k}: {text:40} {shown:>12}  {'met' if met else 'MISSED'}")


def versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
        "('mlserver', 'mlserver-lightgbm', 'fastapi', 'pydantic', 'uvicorn', 'uvloop', "
        "'httptools', 'lightgbm')))"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or f"(versions unknown: {proc.stderr.strip()[-200:]})"


def kiln_version() -> str:
    import kiln

    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True)
    what = f"git {head.stdout.strip() or '?'}" + (" + uncommitted changes" if dirty.stdout else "")
    return f"Kiln {kiln.__version__} ({what})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--setup", action="store_true", help="(re)install the peers' venv first")
    parser.add_argument("--serving-venv", type=Path, default=SERVING_VENV)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run each measurement N times and keep the best (lowest p50, highest rate)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load to CPUs")
    parser.add_argument("--no-wrk", action="store_true", help="use the fallback load generator")
    parser.add_argument("--json", type=Path, help="write every record here")
    args = parser.parse_args()
    names = [s for s in args.servers.split(",") if s]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}: servers are {', '.join(SERVERS)}")
    if args.duration < 1 or args.repeats < 1:
        parser.error("--duration (whole seconds) and --repeats must be at least 1")
    if (os.cpu_count() or 1) < 2 and not args.no_pin:
        parser.error("pinning needs two CPUs: pass --no-pin")
    python = args.serving_venv / "bin" / "python"
    if set(names) & {"loopback", "fastapi", "mlserver"} and (args.setup or not python.exists()):
        setup(args.serving_venv)
    # Ctrl-C and SIGTERM unwind (even where SIGINT came in ignored, as in a background job),
    # so the servers' process groups are stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    meta: dict[str, Any] = {"kiln": kiln_version(), "load_start": os.getloadavg()}
    print(meta["kiln"])
    if set(names) & {"fastapi", "mlserver"}:
        meta["peers"] = versions(python)
        print(f"peers ({python}): {meta['peers']}")
    if args.no_wrk:
        os.environ["BENCH_NO_WRK"] = "1"
    loader = (not args.no_wrk and shutil.which("wrk")) or (
        f"{FALLBACK_LOAD.name} (no wrk: slower; see the loopback row for its ceiling)"
    )
    print(
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"at the start; {args.duration} s per measurement, best of {args.repeats}; "
        f"load generator {loader}; "
        + ("servers on CPU 0, load on CPU 1" if not args.no_pin else "not pinned"),
        flush=True,
    )
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        workload = make_workload(work)
        print(f"model saved to {workload.folder}; {workload.test.num_rows} test rows", flush=True)
        try:
            for name in [s for s in SERVERS if s in names]:
                if name == "floor":
                    print("  floor: Model.predict in-process", flush=True)
                    floors = measure_floor(workload, args.duration, not args.no_pin)
                    records += floors
                    for record in floors:
                        print_progress(record)
                    continue
                if name == "loopback":
                    server = loopback_server(python)
                elif name == "fastapi":
                    server = fastapi_server(python, workload, work)
                elif name == "mlserver":
                    server = mlserver_server(python, workload, work)
                else:
                    server = kiln_server(workload)
                records += measure_server(server, workload, args, work)
                if args.json:
                    write_json(args.json, meta, records)
        except KeyboardInterrupt:
            print("\ninterrupted: servers stopped; the results so far:", flush=True)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    meta["load_end"] = os.getloadavg()
    report(records)
    if args.json:
        write_json(args.json, meta, records)


def write_json(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({**meta, "records": records}, indent=1, default=str))


if __name__ == "__main__":
    main()
