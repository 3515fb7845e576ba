"""Overlapping a stream's stages on threads: :func:`prefetched` produces the next item of an
iterator on a second thread while the caller uses this one, and :class:`Drain` consumes items
on a second thread while the caller makes the next. Both are for stages that release the GIL
(Arrow and DuckDB reading and writing, LightGBM and NumPy predicting), so that on two cores the
slowest stage sets the pace instead of the sum of all. Each holds at most one item in hand.

And the thread budget itself: :func:`kiln_threads` (``KILN_THREADS``, else 1) and
:func:`blas_threads`, which holds NumPy's BLAS to it. Left alone, OpenBLAS runs a large
matrix-vector product on every core: ``logistic_reg`` predicting 1,000,000 rows took 0.35 s on
both cores, against 0.37 s on one (half the CPU), and took the core that batch prediction reads
and writes on."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Drain", "blas_threads", "kiln_threads", "prefetched", "spare_core"]

T = TypeVar("T")

_POLL_S = 0.1
_END = object()


def kiln_threads() -> int:
    """The threads one Kiln process computes on: ``KILN_THREADS``, else 1 (two shared cores ran
    30-120x slower when a library took every core while another process was busy)."""
    try:
        return max(1, int(os.environ.get("KILN_THREADS", "1")))
    except ValueError:
        return 1


def spare_core(busy: int) -> bool:
    """Whether this process may run one more thread beside ``busy`` computing ones without
    oversubscribing the cores it is allowed on (its CPU affinity, else every core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (macOS and Windows have no affinity call)
        cores = os.cpu_count() or 1
    return busy + 1 <= cores


_BLAS: tuple[int, Any] | None = None  # (len(sys.modules) when built, threadpoolctl's handle)


def _blas() -> Any:
    """threadpoolctl's handle on the BLAS libraries loaded now. Built again after new imports (a
    module such as SciPy brings its own OpenBLAS, which a handle built before it would leave
    unlimited), else reused: building one takes ~0.2 ms."""
    global _BLAS
    loaded = len(sys.modules)
    if _BLAS is None or _BLAS[0] != loaded:
        from threadpoolctl import ThreadpoolController

        _BLAS = (loaded, ThreadpoolController().select(user_api="blas"))
    return _BLAS[1]


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """NumPy's BLAS held to :func:`kiln_threads` inside, as it was after (~16 µs: for large
    arrays only; BLAS does not thread small ones anyway)."""
    with _blas().limit(limits=kiln_threads()):
        yield


def prefetched(items: Iterable[T], *, name: str) -> Generator[T, None, None]:
    """``items``, each next one produced on the thread ``name`` while the caller uses this one.

    An exception from ``items`` is raised here, in the caller, where the item would have come.
    Leaving the loop early (``break``, an error, Ctrl-C) stops the thread after the item in
    progress; it is joined before the generator closes."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(_Raised(e))
            return
        put(_END)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class Drain(Generic[T]):
    """Hands each :meth:`put` item to ``consume`` on the thread ``name``, one in flight.

    :meth:`close` waits for the last item and raises the first error ``consume`` raised (as does
    the next :meth:`put` after it failed: nothing more is consumed). :meth:`abort` stops without
    waiting for work queued but not started. Use as a context manager: leaving with an error
    aborts, leaving without one closes."""

    def __init__(self, consume: Callable[[T], None], *, name: str) -> None:
        self._consume = consume
        self._handoff: queue.Queue[object] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                item = self._handoff.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _END or self._stop.is_set():
                return
            try:
                self._consume(item)  # type: ignore[arg-type]
            except BaseException as e:  # raised in the producer by put() or close()
                self._error = e
                return

    def put(self, item: T) -> None:
        while True:
            self._raise()
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} has stopped")
            try:
                self._handoff.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait until every item put is consumed; raise ``consume``'s error, if it had one."""
        if self._thread.is_alive():
            while self._thread.is_alive():
                try:
                    self._handoff.put(_END, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        self._raise()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Drain[T]:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if error is None:
            self.close()
        else:
            self.abort()


class _Raised:
    """An exception travelling from the producing thread to the consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
