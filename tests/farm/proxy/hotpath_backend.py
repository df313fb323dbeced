"""A raw-socket backend for the hot-path tests: every framing HTTP/1.1 allows, byte for byte.

aiohttp would choose the framing itself; these tests need to pick it (chunked with a given
split, Content-Length, close-delimited, 204/304, HEAD), die mid-stream, stream without end,
and see exactly when the proxy stops reading or goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

NDJSON_CHUNKS = (
    b'{"model":"m","response":"\xc3\xa9t\xc3\xa9","done":false}\n',
    b'{"model":"m","response":"a"',  # a line split across two chunks
    b',"done":false}\n{"model":"m","response":"b","done":false}\n',  # two lines in one
    b'{"model":"m","done":true,"eval_count":3}\n',
)
SSE_CHUNKS = (
    b'data: {"choices":[{"delta":{"content":"\xe2\x9c\x93"}}]}\n\n',
    b'data: {"choices":[{"delta":',
    b'{"content":"x"}}]}\n\n: a comment\n\ndata: [DONE]\n\n',
)
ENDLESS_LINE = b'{"model":"m","response":"tok","done":false}\n'
BIG_LINE = b'{"model":"m","response":"' + b"x" * 65_000 + b'","done":false}\n'


@dataclass
class BackendState:
    """What the backend saw and did; tests poll these."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    aborted: int = 0  # streams the peer closed before they ended
    sent: int = 0  # body bytes written by the big stream so far


def _chunked(chunks: tuple[bytes, ...]) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _head(status: str, headers: list[str]) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


class HotpathBackend:
    """`await HotpathBackend().start()`; `url`, `state`, `stop()`. Routes by path."""

    def __init__(self) -> None:
        self.state = BackendState()
        self.big_lines = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> HotpathBackend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.state.requests.append((method.decode(), target.decode()))
                if not await self._answer(method.decode(), target.decode(), writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, writer: asyncio.StreamWriter) -> bool:
        """Write one response; False when the connection must close after it."""
        stream = ["Transfer-Encoding: chunked"]
        if path == "/api/ndjson":
            head = _head("200 OK", ["Content-Type: application/x-ndjson", *stream])
            writer.write(head if method == "HEAD" else head + _chunked(NDJSON_CHUNKS))
        elif path == "/v1/sse":
            writer.write(_head("200 OK", ["Content-Type: text/event-stream", *stream]))
            for chunk in SSE_CHUNKS:  # one write per chunk, each as its own read upstream
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == "/api/length":
            body = b'{"status":"ok"}'
            writer.write(_head("200 OK", [f"Content-Length: {len(body)}"]) + body)
        elif path == "/api/nocontent":
            writer.write(_head("204 No Content", []))
        elif path == "/api/notmodified":
            writer.write(_head("304 Not Modified", []))
        elif path == "/api/close":
            writer.write(
                _head("200 OK", ["Content-Type: application/x-ndjson", "Connection: close"])
            )
            writer.write(b"".join(NDJSON_CHUNKS))
            await writer.drain()
            return False
        elif path in ("/api/die", "/v1/die"):
            kind = "text/event-stream" if path.startswith("/v1") else "application/x-ndjson"
            first = SSE_CHUNKS[0] if path.startswith("/v1") else NDJSON_CHUNKS[0]
            writer.write(_head("200 OK", [f"Content-Type: {kind}", *stream]))
            writer.write(b"%x\r\n%b\r\n" % (len(first), first))
            await writer.drain()
            writer.transport.abort()  # dies mid-stream: no final chunk
            return False
        elif path == "/api/endless":
            return await self._endless(writer, ENDLESS_LINE, None)
        elif path == "/api/big":
            return await self._endless(writer, BIG_LINE, self.big_lines)
        else:
            writer.write(_head("404 Not Found", ["Content-Length: 0"]))
        await writer.drain()
        return True

    async def _endless(self, writer: asyncio.StreamWriter, line: bytes, lines: int | None) -> bool:
        """Stream `line` (`lines` times, or until the peer leaves), draining as a real server
        does: a peer that stops reading stops this loop."""
        writer.write(
            _head("200 OK", ["Content-Type: application/x-ndjson", "Transfer-Encoding: chunked"])
        )
        frame = b"%x\r\n%b\r\n" % (len(line), line)
        sent = 0
        try:
            while lines is None or sent < lines:
                writer.write(frame)
                await writer.drain()
                sent += 1
                self.state.sent += len(line)
                if lines is None:
                    await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            self.state.aborted += 1
            return False
        return True
