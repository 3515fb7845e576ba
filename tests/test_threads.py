"""kiln._threads: a stream's stages overlapped on threads, errors where the caller sees them,
nothing left running; and the thread budget (KILN_THREADS) that NumPy's BLAS is held to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from kiln._threads import Drain, blas_threads, kiln_threads, prefetched


def _alive(name: str) -> bool:
    return any(t.name == name for t in threading.enumerate())


def test_prefetched_yields_every_item_in_order_and_reads_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            produced.append(i)
            yield i

    stream = prefetched(items(), name="test-read")
    assert next(stream) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(produced) >= 2  # the next item was made while the caller held this one
    assert [0, *stream] == [0, 1, 2, 3, 4]
    assert not _alive("test-read")


def test_prefetched_raises_the_producers_error_where_the_item_would_come() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("bad row 2")

    got: list[int] = []

    def collect() -> None:
        for item in prefetched(items(), name="test-read-error"):
            got.append(item)

    with pytest.raises(ValueError, match="bad row 2"):
        collect()
    assert got == [1]
    assert not _alive("test-read-error")


def test_leaving_a_prefetched_loop_early_stops_the_thread() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    stream = prefetched(endless(), name="test-read-early")
    for item in stream:
        if item == 3:
            break
    stream.close()
    assert not _alive("test-read-early")


def test_drain_consumes_every_item_in_order_on_its_thread() -> None:
    seen: list[tuple[int, str]] = []

    def consume(x: int) -> None:
        seen.append((x, threading.current_thread().name))

    with Drain(consume, name="test-w") as drain:
        for i in range(20):
            drain.put(i)
    assert [x for x, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test-w"}
    assert not _alive("test-w")


def test_drain_raises_the_consumers_error_and_consumes_no_more() -> None:
    seen: list[int] = []

    def consume(x: int) -> None:
        if x == 2:
            raise OSError("disk full")
        seen.append(x)

    drain: Drain[int] = Drain(consume, name="test-w-error")

    def feed() -> None:
        for i in range(100):
            drain.put(i)
            time.sleep(0.001)

    with pytest.raises(OSError, match="disk full"):
        feed()
    with pytest.raises(OSError, match="disk full"):
        drain.close()
    assert seen == [0, 1]
    assert not _alive("test-w-error")


def test_leaving_a_drain_with_an_error_aborts_it() -> None:
    release = threading.Event()
    seen: list[int] = []

    def consume(x: int) -> None:
        release.wait(5)
        seen.append(x)

    def interrupted() -> None:
        with Drain(consume, name="test-w-abort") as drain:
            drain.put(1)
            drain.put(2)  # queued while 1 is being consumed
            release.set()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert not _alive("test-w-abort")
    assert seen[0] == 1
    assert len(seen) <= 2


def test_kiln_threads_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_THREADS", raising=False)
    assert kiln_threads() == 1
    monkeypatch.setenv("KILN_THREADS", "3")
    assert kiln_threads() == 3
    monkeypatch.setenv("KILN_THREADS", "many")
    assert kiln_threads() == 1
    monkeypatch.setenv("KILN_THREADS", "0")
    assert kiln_threads() == 1


def test_blas_threads_holds_numpys_blas_to_kiln_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("NumPy here has no BLAS that threadpoolctl can see")
    before = [i["num_threads"] for i in blas]
    monkeypatch.setenv("KILN_THREADS", "1")
    with blas_threads():
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
    after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert after == before


def test_blas_threads_also_holds_a_blas_loaded_after_its_first_use() -> None:
    """SciPy brings its own OpenBLAS: imported after blas_threads was first used, it is held
    too (a fresh process, so that SciPy is not loaded yet)."""
    code = """
import json, numpy as np
from threadpoolctl import threadpool_info
from kiln._threads import blas_threads
np.ones((4, 4)) @ np.ones((4, 4))
with blas_threads():
    pass
import scipy.linalg
def blas():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
before = blas()
with blas_threads():
    inside = blas()
print(json.dumps([before, inside]))
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["KILN_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    before, inside = json.loads(out.stdout)
    if len(before) < 2 or max(before.values()) < 2:
        pytest.skip("needs two BLAS libraries that run on more than one thread by default")
    assert set(inside.values()) == {1}


def test_spare_core_counts_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """One more thread fits beside ``busy`` ones only while busy + 1 <= the allowed cores."""
    from kiln._threads import spare_core

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    assert spare_core(1)
    assert spare_core(3)
    assert not spare_core(4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {5}, raising=False)
    assert not spare_core(1)
