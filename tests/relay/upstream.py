"""A tiny loopback HTTP/1.1 upstream for relay tests, until the simulator covers every case.

Routes: `/stream?n=N&delay=S` (chunked NDJSON, Ollama-like lines, ends with `done:true`),
`/hang` (headers, then a line every 20 ms until the client leaves), `/die` (two lines, then the
connection drops mid-body), `/v1/sse` (SSE ending in `data: [DONE]`), anything else echoes the
request as JSON. `/flood?mb=M` streams M MB of NDJSON as fast as the reader takes it:
`flood_b` counts what it wrote, `stuck_s()` is how long its current write has waited for the
reader (TCP is full; 0 while it is not waiting). `active` counts streams in progress;
`disconnects` counts clients that left.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from urllib.parse import parse_qs, urlsplit


class Upstream:
    """Runs on 127.0.0.1 on a free port inside `async with`."""

    def __init__(self) -> None:
        self.active = 0
        self.disconnects = 0
        self.requests: list[dict[str, object]] = []
        self.flood_b = 0
        self._stuck_since: float | None = None
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.url = ""

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Let open handlers finish by dropping their connections (a cancelled handler task
        # makes asyncio log an error on Python 3.11).
        for writer in self._handlers.values():
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5)
        await self._server.wait_closed()

    def stuck_s(self) -> float:
        """Seconds the flood's current write has been waiting for the reader (0: none waits)."""
        since = self._stuck_since
        return 0.0 if since is None else time.monotonic() - since

    async def wait_for(self, predicate, timeout: float = 5.0) -> None:
        """Poll a condition on this server with a deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if loop.time() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.01)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            url = urlsplit(target)
            self.requests.append({"method": method, "path": url.path, "headers": headers})
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/stream":
                await self._stream(
                    reader, writer, int(query.get("n", "5")), float(query.get("delay", "0"))
                )
            elif url.path == "/hang":
                await self._stream(reader, writer, 10**9, 0.02)
            elif url.path == "/flood":
                await self._flood(writer, int(float(query.get("mb", "50")) * 1_000_000))
            elif url.path == "/die":
                await self._die(writer)
            elif url.path == "/v1/sse":
                await self._sse(writer)
            else:
                payload = json.dumps(
                    {
                        "method": method,
                        "target": target,
                        "headers": headers,
                        "body": body.decode("utf-8", "replace"),
                    }
                ).encode()
                await self._send(writer, 200, "application/json", payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.pop(task, None)

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes
    ) -> None:
        writer.write(
            f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    @staticmethod
    def _chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    async def _stream(self, reader, writer, n: int, delay: float) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.active += 1
        eof = asyncio.ensure_future(reader.read(1))
        try:
            for i in range(n):
                line = json.dumps({"model": "m", "response": f"tok{i} ", "done": False}) + "\n"
                writer.write(self._chunk(line.encode()))
                await writer.drain()
                if delay:
                    done, _ = await asyncio.wait({eof}, timeout=delay)
                    if done:
                        self.disconnects += 1
                        return
            writer.write(
                self._chunk(
                    json.dumps({"model": "m", "response": "", "done": True}).encode() + b"\n"
                )
            )
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            self.disconnects += 1
        finally:
            eof.cancel()
            self.active -= 1

    async def _flood(self, writer: asyncio.StreamWriter, total_b: int) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        line = json.dumps({"model": "m", "response": "x" * 1000, "done": False}).encode() + b"\n"
        block = self._chunk(line * 64)
        self.active += 1
        try:
            sent = 0
            while sent < total_b:
                writer.write(block)
                sent += len(line) * 64
                self.flood_b += len(line) * 64
                # drain returns at once (without yielding) unless the reader stopped reading.
                self._stuck_since = time.monotonic()
                await writer.drain()
                self._stuck_since = None
            writer.write(self._chunk(b'{"model":"m","response":"","done":true}\n') + b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            self.disconnects += 1
        finally:
            self._stuck_since = None
            self.active -= 1

    async def _die(self, writer) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for i in range(2):
            writer.write(
                self._chunk(json.dumps({"response": f"t{i}", "done": False}).encode() + b"\n")
            )
        await writer.drain()
        writer.transport.abort()

    async def _sse(self, writer) -> None:
        events = [
            {"choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": "<|eot_id|>"}, "finish_reason": "stop"}]},
        ]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        await self._send(writer, 200, "text/event-stream", body.encode())
