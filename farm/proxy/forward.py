"""The streaming hot path: forward one request to a backend and its response back, unbuffered.

A raw ASGI handler (a FastAPI route with httpx measured several ms slower per request)
with the lean client of `farm.proxy.upstream`. Bytes are relayed as the backend's socket
delivers them; `await send()` carries TCP back-pressure from the client to
the backend, so nothing queues up in the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from farm.proxy.errors import (
    BadGatewayError,
    BodyTooLargeError,
    GatewayTimeoutError,
    OutOfDescriptorsError,
    ProxyError,
    StreamCutError,
    UnauthorizedError,
    error_body,
    stream_error_event,
)
from farm.proxy.exchange import Exchange, record_exchange
from farm.proxy.headers import downstream_response_headers, header_value, upstream_request_headers
from farm.proxy.link import Abort, ClientDisconnected, ClientLink, DeadlineSweeper
from farm.proxy.metrics import ProxyMetrics
from farm.proxy.payload import UPLOAD_PREFIXES, Pinning, inspect_body, wants_parsing
from farm.proxy.pool import Backend, BackendPool
from farm.proxy.security import ApiKeyCheck
from farm.proxy.settings import ProxySettings
from farm.proxy.upstream import (
    Body,
    ConnectFailed,
    Connection,
    OutOfDescriptors,
    ResponseBroken,
    UpstreamPool,
    request_head,
)

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Send = Any
# The backend closes idle keep-alive connections too (uvicorn after 5 s); dropping ours a
# little earlier avoids sending a request down a connection that is being closed.
UPSTREAM_KEEPALIVE_S = 4.0
_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]


class Forwarder:
    """The ASGI callable for `/api/*`, `/v1/*` and `/`."""

    def __init__(
        self,
        settings: ProxySettings,
        pool: BackendPool,
        metrics: ProxyMetrics,
        sweeper: DeadlineSweeper,
        auth: ApiKeyCheck,
        drop_headers: frozenset[bytes],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.sweeper = sweeper
        self.auth = auth
        self.upstreams = {b.url: _upstream_pool(b.url, settings) for b in pool.backends}
        self._drop = drop_headers
        self._pinning = Pinning(settings.pin_num_ctx, settings.pin_num_gpu, settings.model)
        self._drop_cors = bool(settings.cors_origins)
        # JSON bodies have the front door's cap; uploads only `max_body_bytes` (if set).
        self._upload_limit = settings.max_body_bytes
        json_cap = settings.client_max_body_size or None
        self._json_limit = min(
            (cap for cap in (json_cap, settings.max_body_bytes) if cap is not None), default=None
        )

    def body_limit(self, path: str) -> int | None:
        """The largest request body `path` takes (None: no limit)."""
        return self._upload_limit if path.startswith(UPLOAD_PREFIXES) else self._json_limit

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        loop = asyncio.get_running_loop()
        ex = Exchange(scope["method"], scope["path"], loop.time())
        task = asyncio.current_task()
        assert task is not None  # always inside a task under an ASGI server
        link = ClientLink(receive, task)
        self.sweeper.links.add(link)
        try:
            await self._handle(scope, link, send, ex)
        except asyncio.CancelledError:
            if link.abort is None:
                raise
            task.uncancel()
            await self._after_abort(link.abort, send, ex)
        except ClientDisconnected:
            ex.outcome = Abort.CLIENT_LEFT.value
        except ProxyError as exc:
            await self._fail(exc, send, ex)
        finally:
            link.close()
            ex.bytes_in = link.body_bytes
            self.sweeper.links.discard(link)
            if ex.backend is not None:
                ex.backend.in_flight -= 1
            record_exchange(ex, loop.time(), self.metrics, self.settings.access_log)

    async def _handle(self, scope: Scope, link: ClientLink, send: Send, ex: Exchange) -> None:
        headers = scope["headers"]
        self.auth.check(ex.path, headers)
        length = _content_length(headers)
        limit = self.body_limit(ex.path)
        if limit is not None and length is not None and length > limit:
            raise _too_large(limit, ex.path, length)
        up_headers = upstream_request_headers(headers, self._drop)
        body, framing = await self._request_body(ex, headers, length, link, limit)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        conn, pool = await self._open(ex, target, up_headers, framing, body)
        try:
            await self._relay(conn, link, send, ex)
        finally:
            # An unfinished response closes the connection: the backend sees the abort and
            # frees its slot. A finished one goes back to the pool.
            pool.release(conn)

    async def _request_body(
        self,
        ex: Exchange,
        headers: list[tuple[bytes, bytes]],
        length: int | None,
        link: ClientLink,
        limit: int | None,
    ) -> tuple[Body, bytes]:
        """The body to send upstream and its framing header; starts the header clock.

        Inference bodies are read whole (model-aware routing, pinning); any other body is
        streamed, and the header clock starts only once its upload is complete.
        """
        loop = asyncio.get_running_loop()
        header_timeout = self.settings.header_timeout
        framing = b"" if length is None else b"content-length: %d\r\n" % length
        if wants_parsing(ex.method, ex.path, length):
            try:
                whole = await link.read_body(limit)
            except BodyTooLargeError:
                raise _too_large(limit, ex.path) from None
            inspected = inspect_body(ex.path, whole, self._pinning)
            ex.model = inspected.model
            link.deadline = loop.time() + header_timeout
            return inspected.body, b"content-length: %d\r\n" % len(inspected.body)
        if length or header_value(headers, b"transfer-encoding") is not None:

            def start_header_clock() -> None:
                link.deadline = loop.time() + header_timeout

            link.on_body_done = start_header_clock
            chunked = b"transfer-encoding: chunked\r\n"
            return link.stream_body(limit), framing if length is not None else chunked
        link.watch()
        link.deadline = loop.time() + header_timeout
        return None, framing

    async def _open(
        self,
        ex: Exchange,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        framing: bytes,
        body: Body,
    ) -> tuple[Connection, UpstreamPool]:
        """Send the request to a backend and wait for its status line and headers."""
        replayable = not isinstance(body, AsyncIterator)
        tried: list[Backend] = []
        while True:
            backend = self.pool.pick(ex.model, tried)
            if backend is None:
                raise BadGatewayError(f"no backend reachable ({self.pool.backends[-1].last_error})")
            pool = self.upstreams[backend.url]
            backend.in_flight += 1
            ex.backend = backend
            head = request_head(ex.method, target, pool.host_header, headers, framing)
            try:
                return await self._exchange_head(pool, head, body, ex.method, framing, replayable)
            except OutOfDescriptors as exc:
                backend.in_flight -= 1
                ex.backend = None
                logger.warning("no file descriptor left for a backend connection: %s", exc)
                raise OutOfDescriptorsError(
                    "proxy is out of file descriptors (raise ulimit -n); retry later"
                ) from exc
            except ConnectFailed as exc:
                self.metrics.upstream_errors.labels("connect").inc()
                self.pool.mark_down(backend, f"cannot connect: {exc}")
                backend.in_flight -= 1
                ex.backend = None
                tried.append(backend)
                # Only a body still in hand can be replayed on another backend.
                if replayable and len(tried) < len(self.pool.backends):
                    continue
                raise BadGatewayError(f"backend {backend.url} unreachable: {exc}") from exc
            except ResponseBroken as exc:
                self.metrics.upstream_errors.labels("no_response").inc()
                raise BadGatewayError(
                    f"backend {backend.url} failed before responding: {exc}"
                ) from exc

    async def _exchange_head(
        self,
        pool: UpstreamPool,
        head: bytes,
        body: Body,
        method: str,
        framing: bytes,
        replayable: bool,
    ) -> tuple[Connection, UpstreamPool]:
        chunked = framing.startswith(b"transfer-encoding")
        for attempt in (1, 2):
            conn, reused = await pool.acquire()
            try:
                conn.send(head, body, method == "HEAD", chunked)
                await conn.response_head()
                return conn, pool
            except ResponseBroken as exc:
                conn.close()
                # A pooled connection the backend closed while idle: retry once on a new one.
                if attempt == 1 and reused and exc.before_headers and replayable:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def _relay(self, conn: Connection, link: ClientLink, send: Send, ex: Exchange) -> None:
        """Forward status, headers and body chunks as they arrive."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        ex.status = conn.status
        ex.ttfb_s = now - ex.started
        link.in_header_phase = False
        idle = self.settings.idle_timeout
        link.deadline = now + idle
        out_headers, streaming = downstream_response_headers(conn.raw_headers, self._drop_cors)
        if streaming:
            ctype = header_value(out_headers, b"content-type") or b""
            ex.stream_kind = (
                "sse" if b"event-stream" in ctype else "ndjson" if b"ndjson" in ctype else "other"
            )
        await send({"type": "http.response.start", "status": conn.status, "headers": out_headers})
        ex.response_started = True
        read, at_eof = conn.read, conn.at_eof
        more = True
        try:
            while more and (chunk := await read()):
                link.deadline = loop.time() + idle
                ex.bytes_out += len(chunk)
                # When the backend's end marker came with this chunk, end the response in the
                # same write (one syscall less per request; nothing is held back).
                more = not at_eof()
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        except ResponseBroken as exc:
            self.metrics.upstream_errors.labels("midstream").inc()
            assert ex.backend is not None
            await self._cut(ex, send, f"backend {ex.backend.url} broke off the response: {exc}")
            return
        if more:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if ex.backend is not None and conn.status == 200:
            self.pool.record_served(ex.backend, ex.model)

    async def _cut(self, ex: Exchange, send: Send, message: str) -> None:
        """End a started response that broke: an in-band error where the format has one."""
        ex.outcome = "upstream_cut"
        logger.warning("%s %s: %s", ex.method, ex.path, message)
        if ex.stream_kind in ("ndjson", "sse"):
            event = stream_error_event(message, ex.stream_kind == "sse")
            ex.bytes_out += len(event)
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return
        raise StreamCutError(message)

    async def _after_abort(self, reason: Abort, send: Send, ex: Exchange) -> None:
        ex.outcome = reason.value
        if reason is Abort.CLIENT_LEFT:
            phase = "streaming" if ex.response_started else "before_headers"
            self.metrics.client_aborts.labels(phase).inc()
            return
        if reason is Abort.BODY_TOO_LARGE:
            limit = self.body_limit(ex.path)
            await self._fail(_too_large(limit, ex.path), send, ex)
            return
        self.metrics.upstream_errors.labels(reason.value).inc()
        if reason is Abort.HEADER_TIMEOUT:
            timeout = self.settings.header_timeout
            await self._fail(
                GatewayTimeoutError(f"backend sent no response within {timeout:g} s"), send, ex
            )
            return
        await self._cut(ex, send, f"backend sent nothing for {self.settings.idle_timeout:g} s")

    async def _fail(self, exc: ProxyError, send: Send, ex: Exchange) -> None:
        """Answer with the proxy's own `{"error": ...}` if the response has not started."""
        if ex.response_started:
            raise exc
        ex.status = exc.status
        if ex.outcome == "ok":
            ex.outcome = type(exc).__name__
        headers = list(_JSON_HEADERS)
        if isinstance(exc, UnauthorizedError):
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": error_body(str(exc))})
        ex.response_started = True


def _upstream_pool(url: str, settings: ProxySettings) -> UpstreamPool:
    parts = urlsplit(url)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    return UpstreamPool(
        parts.hostname or "localhost",
        parts.port or (443 if tls else 80),
        settings.connect_timeout,
        UPSTREAM_KEEPALIVE_S,
        tls,
    )


def _too_large(limit: int | None, path: str, length: int | None = None) -> BodyTooLargeError:
    flag = "--max-body-bytes" if path.startswith(UPLOAD_PREFIXES) else "--client-max-body-size"
    size = "request body" if length is None else f"request body of {length} bytes"
    return BodyTooLargeError(f"{size} is larger than {limit} bytes (proxy limit {flag})")


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    raw = header_value(headers, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
