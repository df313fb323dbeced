"""A tiny Ollama-like backend (aiohttp.web, in the test's event loop) for the proxy's unit tests.

It is not the simulator: just enough routes, with knobs for header delay, line spacing, a cut
connection and a slow start, plus counters the tests read (`active`, `cancelled`, `seen`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from farm.common.net import free_port

EXISTING_BLOB = "sha256:" + "e" * 64
BIG = bytes(range(256)) * 20_000  # ~5 MB: more than any buffer on the way


@dataclass
class FakeState:
    """What the fake backend saw; tests poll these."""

    active: int = 0
    started: int = 0
    finished: int = 0
    cancelled: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    blob_bytes: int = 0
    loaded: set[str] = field(default_factory=set)
    # Every request that reached the backend: (method, path as sent, query included).
    requests: list[tuple[str, str]] = field(default_factory=list)


class FakeBackend:
    """Start with `await FakeBackend().start()`; `url`, `state`, `stop()`."""

    def __init__(
        self,
        lines: int = 5,
        line_delay_s: float = 0.0,
        header_delay_s: float = 0.0,
        keepalive_s: float = 75.0,
        port: int | None = None,
    ):
        self.keepalive_s = keepalive_s
        self.lines = lines
        self.line_delay_s = line_delay_s
        self.header_delay_s = header_delay_s
        self.cut_after: int | None = None
        self.verify_blobs = True
        self.state = FakeState()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeBackend:
        app = web.Application(client_max_size=1024**4, middlewares=[self._record])
        app.router.add_route("GET", "/", self._root)
        app.router.add_route("HEAD", "/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_post("/api/chat", self._generate)
        app.router.add_post("/v1/chat/completions", self._sse)
        app.router.add_post("/api/blobs/{digest}", self._blob)
        app.router.add_route("*", "/api/echo", self._echo)
        app.router.add_get("/api/big", self._big)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            keepalive_timeout=self.keepalive_s,
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.state.requests.append((request.method, request.raw_path))
        return await handler(request)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0-fake"})

    async def _ps(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": m, "model": m} for m in self.state.loaded]})

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": "fake:latest", "model": "fake:latest"}]})

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode("latin-1"),
            },
            headers={"X-Custom": "kept", "Access-Control-Allow-Origin": "*"},
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.state.seen.append(body)
        if body.get("model") == "missing":
            return web.json_response({"error": "model 'missing' not found"}, status=404)
        self.state.started += 1
        self.state.active += 1
        self.state.loaded.add(f"{body.get('model')}:latest")
        try:
            await asyncio.sleep(self.header_delay_s)
            resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(self.lines):
                if self.cut_after is not None and i == self.cut_after:
                    assert request.transport is not None
                    request.transport.abort()  # die mid-stream, no final chunk
                    return resp
                if i:
                    await asyncio.sleep(self.line_delay_s)
                line = {"model": body.get("model"), "response": f"t{i}", "done": False}
                await resp.write(json.dumps(line).encode() + b"\n")
            await resp.write(
                json.dumps({"model": body.get("model"), "done": True}).encode() + b"\n"
            )
            await resp.write_eof()
            self.state.finished += 1
            return resp
        except (asyncio.CancelledError, ConnectionResetError):
            # The client (the proxy) closed the connection: this is what frees a slot.
            self.state.cancelled += 1
            raise
        finally:
            self.state.active -= 1

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(self.lines):
            if self.cut_after is not None and i == self.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            await resp.write(b'data: {"n": %d}\n\n' % i)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _blob(self, request: web.Request) -> web.Response:
        if request.match_info["digest"] == EXISTING_BLOB:
            return web.Response(status=200)  # like Ollama: already stored, body not read
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            if self.verify_blobs:
                digest.update(chunk)
            self.state.blob_bytes += len(chunk)
        if self.verify_blobs and request.match_info["digest"] != "sha256:" + digest.hexdigest():
            return web.json_response({"error": "digest mismatch"}, status=400)
        return web.Response(status=201)
