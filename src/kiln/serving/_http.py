"""A lean HTTP/1.1 server on asyncio: httptools parses, uvloop runs the loop (when installed),
keep-alive and pipelining, and the prediction runs right in the event loop's thread (no hop to a
worker: a request is a few hundred microseconds of CPU; a hop would cost more than that).

A body over the limit is answered 413 as soon as its Content-Length (or its size so far) says so;
the rest of it is read and dropped, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.serving._app import Api

__all__ = ["listen"]

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Content Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
_STATUS = {
    code: b"HTTP/1.1 %d %s\r\nServer: kiln\r\n" % (code, reason)
    for code, reason in _REASONS.items()
}
_DISCARD_AT_MOST = 64 * 1024 * 1024  # bytes of an over-large body read before hanging up


class _Connection(asyncio.Protocol):
    __slots__ = (
        "api",
        "auth",
        "body",
        "client_id",
        "discarded",
        "expect",
        "header_length",
        "max_body",
        "parser",
        "size",
        "too_big",
        "transport",
        "url",
    )

    def __init__(self, api: Api, max_body: int, parser_cls: Any) -> None:
        self.api = api
        self.max_body = max_body
        self.parser = parser_cls(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.auth: bytes | None = None
        self.header_length: bytes | None = None
        self.client_id: bytes | None = None
        self.expect = False
        self.too_big = False
        self.discarded = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send(
                400, self.api.dumps({"error": "protocol upgrades are not served"}), close=True
            )
        except httptools.HttpParserError as e:
            if not self.too_big:
                message = f"malformed HTTP request: {e}"
                self._send(400, self.api.dumps({"error": message}), close=True)
            elif self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.size = 0
        self.auth = None
        self.header_length = None
        self.client_id = None
        self.expect = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"authorization":
            self.auth = value
        elif lower == b"content-length" and value.isdigit() and int(value) > self.max_body:
            self._refuse_size()
        elif lower == b"inference-header-content-length":
            self.header_length = value
        elif lower == b"x-client-id":
            self.client_id = value
        elif lower == b"expect" and value.lower() == b"100-continue":
            self.expect = True

    def on_headers_complete(self) -> None:
        if self.expect and not self.too_big and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s without

    def on_body(self, body: bytes) -> None:
        if self.too_big:
            self.discarded += len(body)
            if self.discarded > _DISCARD_AT_MOST and self.transport is not None:
                self.transport.close()
            return
        self.size += len(body)
        if self.size > self.max_body:
            self._refuse_size()
            self.body = []
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.too_big:
            if self.transport is not None:
                self.transport.close()
            return
        method = self.parser.get_method().decode("ascii", "replace")
        try:
            url = self.url.decode()
        except UnicodeDecodeError:
            url = self.url.decode("latin-1")
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        status, out, content_type, extra = self.api.handle(
            method, url, body, self.auth, self.header_length, self.client_id
        )
        self._send(status, out, content_type, extra, close=not self.parser.should_keep_alive())

    def _refuse_size(self) -> None:
        if self.too_big:
            return
        self.too_big = True
        message = (
            f"the request body is larger than this server takes ({self.max_body:,} bytes); "
            "send fewer rows per request, or start the server with a larger --max-body-bytes"
        )
        self._send(413, self.api.dumps({"error": message}), close=False)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        extra: bytes = b"",
        *,
        close: bool,
    ) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        head = _STATUS.get(status) or b"HTTP/1.1 %d Error\r\n" % status
        transport.write(
            b"%sContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n%s"
            % (
                head,
                content_type,
                len(body),
                extra,
                b"Connection: close\r\n" if close else b"",
                body,
            )
        )
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def listen(
    api: Api,
    host: str,
    port: int,
    *,
    max_body: int,
    reuse_port: bool,
    on_ready: Callable[[int], None],
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; ``on_ready(port)`` once the socket listens."""
    import httptools

    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is in the serve extra; asyncio works too
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    parser_cls = httptools.HttpRequestParser
    try:
        server = loop.run_until_complete(
            loop.create_server(
                lambda: _Connection(api, max_body, parser_cls),
                host,
                port,
                reuse_port=reuse_port or None,
                backlog=4096,
            )
        )
    except OSError as e:
        from kiln.errors import KilnError

        loop.close()
        raise KilnError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port "
            "(or stop what holds it)"
        ) from e
    stopped = loop.create_future()

    def stop() -> None:
        api.ready = False
        if not stopped.done():
            stopped.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    sockets = server.sockets
    on_ready(sockets[0].getsockname()[1] if sockets else port)
    try:
        loop.run_until_complete(stopped)
    finally:
        server.close()
        if on_stop is not None:
            on_stop()
        loop.close()
