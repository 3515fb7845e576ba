"""``serve``: load and warm up the models, then answer HTTP on one or more worker processes.

``workers > 1`` forks that many processes before any model is loaded (no thread pool is forked);
each loads and warms up its own copy of the models, then listens on the same port with
``SO_REUSEPORT`` so that the kernel spreads connections among them. The parent waits for every
worker to be ready (or for the first failure, which it reports), prints the ready line, and
passes SIGTERM/SIGINT on. Each worker computes on one thread: OMP, OpenBLAS and MKL are held to
one thread unless the environment says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln._workers import THREAD_VARS
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.workspace import Workspace

__all__ = ["ServeOptions", "serve"]

EXTRA_HINT = "pip install 'kiln[serve]'"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    token: str | None = None
    log_rate: float = 0.0
    max_body_bytes: int = 10 * 1024 * 1024
    poll_seconds: float = 2.0
    splits: tuple[str, ...] = ()


def _libraries() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    try:
        import httptools  # noqa: F401
        import orjson
    except ImportError as e:
        raise KilnError(
            f"kiln serve needs the serving libraries ({e.name} is not installed): {EXTRA_HINT}"
        ) from e

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)

    return dumps, orjson.loads


def _lean_lightgbm() -> None:
    """Import LightGBM without its scikit-learn wrappers, which a server never uses (Kiln
    predicts through LightGBM's Booster): where scikit-learn is installed, LightGBM imports it
    and SciPy, 0.8 s of a server's start on this machine (``import lightgbm`` 1.45 -> 0.62 s).
    Only LightGBM's own import is affected, and only when neither is imported yet:
    scikit-learn imports normally afterwards (a custom trainer that uses it still loads)."""
    import importlib.util

    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        return
    if importlib.util.find_spec("lightgbm") is None:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # LightGBM's probe: ImportError
    try:
        import lightgbm  # noqa: F401
    except ImportError:  # a broken install: the model's own load says what is wrong
        pass
    finally:
        if sys.modules.get("sklearn", sys) is None:  # (sys: a stand-in for "absent")
            del sys.modules["sklearn"]


def serve(
    models: Sequence[str],
    options: ServeOptions,
    *,
    announce: Callable[[str], None],
    workspace_finder: Callable[[], Workspace | None],
) -> None:
    """Serve ``models`` (command-line names; none: every production alias) until stopped."""
    for var in THREAD_VARS:  # one thread per worker process (before the libraries start)
        os.environ.setdefault(var, "1")
    _libraries()
    _lean_lightgbm()
    if not 0.0 <= options.log_rate <= 1.0:
        raise KilnError(f"--log-predictions {options.log_rate}: give a rate from 0 to 1")
    if options.workers < 1:
        raise KilnError(f"--workers {options.workers}: give 1 or more")
    if options.workers > 1 and options.port == 0:
        raise KilnError("--workers above 1 needs a fixed --port (the workers share it)")
    from kiln.serving._deploy import parse_specs, parse_split

    workspace = workspace_finder()
    splits = [parse_split(text) for text in options.splits]
    # a bad name fails here, before any fork; with only --split, only the split models
    specs = parse_specs(models, workspace) if models or not splits else []
    if options.workers == 1:
        _worker(specs, workspace, options, announce=announce, ready_fd=None)
        return
    if workspace is not None:
        workspace.close()  # no database connection crosses a fork
    _supervise(specs, workspace, options, announce)


def _worker(
    specs: Sequence[Any],
    workspace: Workspace | None,
    options: ServeOptions,
    *,
    announce: Callable[[str], None] | None,
    ready_fd: int | None,
) -> None:
    from kiln.serving._app import Api
    from kiln.serving._deploy import Deployment, parse_split
    from kiln.serving._http import listen
    from kiln.serving._predlog import PredictionLog

    dumps, loads = _libraries()
    deployment = Deployment(
        specs,
        workspace,
        splits=[parse_split(text) for text in options.splits],
        poll_seconds=options.poll_seconds,
    )
    deployment.load()
    log = None
    if options.log_rate > 0:
        from kiln.workspace import STATE_DIR, Workspace

        root = workspace.root if workspace is not None else Workspace.find_or_create().root
        log = PredictionLog(root / STATE_DIR / "predictions", options.log_rate, dumps=dumps)
        deployment.on_tick = log.tick
    api = Api(deployment, dumps=dumps, loads=loads, token=options.token, log=log)

    def ready(port: int) -> None:
        deployment.start_watching()
        if announce is not None:
            announce(_ready_line(options, port, deployment))
        if ready_fd is not None:
            os.write(ready_fd, b"R\n")
            os.close(ready_fd)

    def stopped() -> None:
        deployment.stop()
        if log is not None:
            log.flush()

    listen(
        api,
        options.host,
        options.port,
        max_body=options.max_body_bytes,
        reuse_port=ready_fd is not None,
        on_ready=ready,
        on_stop=stopped,
    )


def _ready_line(options: ServeOptions, port: int, deployment: Any) -> str:
    host = f"[{options.host}]" if ":" in options.host else options.host
    served = deployment.describe()
    workers = f" on {options.workers} workers" if options.workers > 1 else ""
    return f"serving http://{host}:{port}{workers}: {served}"


def _supervise(
    specs: Sequence[Any], workspace: Workspace | None, options: ServeOptions, announce: Any
) -> None:
    read_fd, write_fd = os.pipe()
    pids: list[int] = []
    for _ in range(options.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            code = 0
            try:
                _worker(specs, workspace, options, announce=None, ready_fd=write_fd)
            except KilnError as e:
                os.write(write_fd, b"E" + str(e).replace("\n", " ").encode() + b"\n")
                code = e.exit_code
            except BaseException as e:
                os.write(write_fd, b"E" + repr(e).encode() + b"\n")
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(write_fd)

    def forward(signum: int, _frame: Any) -> None:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    ready = 0
    with os.fdopen(read_fd, "rb") as pipe:
        while ready < len(pids):
            line = pipe.readline()
            if not line:
                break
            if line.startswith(b"E"):
                forward(signal.SIGTERM, None)
                for p in pids:
                    os.waitpid(p, 0)
                raise KilnError(line[1:].decode(errors="replace").strip())
            ready += 1
    if ready < len(pids):
        forward(signal.SIGTERM, None)
        raise KilnError("a worker process ended before it was ready")
    names = [s.name for s in specs] + [s.partition("=")[0] for s in options.splits]
    announce(
        f"serving http://{options.host}:{options.port} on {options.workers} workers: "
        + ", ".join(dict.fromkeys(names))
    )
    for p in pids:
        while True:
            try:
                os.waitpid(p, 0)
                break
            except InterruptedError:
                continue
    sys.stdout.flush()
