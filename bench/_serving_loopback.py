"""The loopback calibration server of ``bench/serving.py``: no model, no JSON parsing.

A raw asyncio protocol (uvloop when installed) that reads each HTTP/1.1 request (headers and a
``Content-Length`` body) and answers ``{}`` at once, keep-alive. Measured like the servers, it
gives, in the same run, the round trip that loopback, the kernel and the load generator cost on
this machine (the part of every server's latency no server can remove), and the request rate the
load generator reaches when the server costs almost nothing (it must stay well above the
servers' rates, or the load generator is the bottleneck).

    python bench/_serving_loopback.py HOST PORT
"""

from __future__ import annotations

import asyncio
import sys

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
READY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            self.transport.write(READY if self.buffer.startswith(b"GET") else ANSWER)
            self.buffer = self.buffer[end + 4 + length :]


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Answer, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
