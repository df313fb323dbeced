"""A backend that answers health probes but breaks every other request, for failover tests.

Raw asyncio, so the way it breaks is exact: `reset` (TCP RST after reading the request head),
`close` (a clean FIN, same moment) or `partial` (the first bytes of a status line, then FIN).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass, field

from farm.common.net import free_port

_PROBES = {
    b"/api/version": {"version": "0.0.0-flaky"},
    b"/api/ps": {"models": []},
    b"/api/tags": {"models": [{"name": "fake:latest", "model": "fake:latest"}]},
}


@dataclass
class FlakyBackend:
    """`await FlakyBackend("reset").start()`; `url`, `broken` (requests broken), `stop()`."""

    mode: str
    port: int = field(default_factory=free_port)
    broken: list[bytes] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FlakyBackend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        """Stop listening: from now on the port refuses connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        method, target = head.split(b" ", 2)[:2]
        if method == b"GET":
            doc = _PROBES.get(target)
            status = b"200 OK" if doc is not None else b"404 Not Found"
            body = json.dumps(doc if doc is not None else {"error": "not found"}).encode()
            writer.write(
                b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, len(body), body)
            )
            await writer.drain()
            writer.close()
            return
        self.broken.append(target)
        if self.mode == "partial":
            writer.write(b"HTTP/1.1 200")
            await writer.drain()
        if self.mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.close()
