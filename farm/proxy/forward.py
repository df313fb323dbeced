"""The streaming hot path: forward one request to a backend and its response back, unbuffered.

A raw ASGI handler with an aiohttp client: the spec's measurement (proxy-gpu §A2.3) found this
pair within about 0.4 ms of nginx where a FastAPI route with httpx added several ms. Bytes are
relayed as the backend's socket delivers them; `await send()` carries TCP back-pressure from
the client to the backend, so nothing queues up in the proxy.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from farm.proxy.config import ProxyConfig
from farm.proxy.errors import (
    BadGatewayError,
    BodyTooLargeError,
    GatewayTimeoutError,
    ProxyError,
    StreamCutError,
    UnauthorizedError,
    error_body,
    stream_error_event,
)
from farm.proxy.headers import downstream_response_headers, header_value, upstream_request_headers
from farm.proxy.link import Abort, ClientDisconnected, ClientLink, DeadlineSweeper
from farm.proxy.metrics import ProxyMetrics, route_label
from farm.proxy.payload import Pinning, inspect_body, wants_parsing
from farm.proxy.pool import Backend, BackendPool
from farm.proxy.security import ApiKeyCheck

access_logger = logging.getLogger("farm.proxy.access")
logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Send = Any
LARGE_BODY_BYTES = 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]


@dataclass(slots=True)
class Exchange:
    """What happened to one request: feeds the access log line and the metrics."""

    method: str
    path: str
    started: float
    model: str | None = None
    backend: Backend | None = None
    status: int = 0
    ttfb_s: float | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    response_started: bool = False
    stream_kind: str = ""  # "ndjson", "sse", "other" once a streamed response has started
    outcome: str = "ok"


class Forwarder:
    """The ASGI callable for `/api/*`, `/v1/*` and `/`; `session` is set by the app's lifespan."""

    def __init__(
        self,
        config: ProxyConfig,
        pool: BackendPool,
        metrics: ProxyMetrics,
        sweeper: DeadlineSweeper,
        auth: ApiKeyCheck,
        drop_headers: frozenset[bytes],
    ) -> None:
        self.config = config
        self.pool = pool
        self.metrics = metrics
        self.sweeper = sweeper
        self.auth = auth
        self.session: aiohttp.ClientSession | None = None
        self._drop = drop_headers
        self._pinning = Pinning(config.pin_num_ctx, config.pin_num_gpu, config.model)
        self._drop_cors = bool(config.cors_origins)

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
            self._record(ex, loop.time())

    async def _handle(self, scope: Scope, link: ClientLink, send: Send, ex: Exchange) -> None:
        headers = scope["headers"]
        self.auth.check(ex.path, headers)
        length = _content_length(headers)
        limit = self.config.max_body_bytes
        if limit is not None and length is not None and length > limit:
            raise BodyTooLargeError(f"request body of {length} bytes is over the {limit} limit")
        loop = asyncio.get_running_loop()
        header_timeout = self.config.header_timeout_s
        up_headers = upstream_request_headers(headers, self._drop)
        body: bytes | AsyncIterator[bytes] | None
        if wants_parsing(ex.method, ex.path, length):
            inspected = inspect_body(ex.path, await link.read_body(limit), self._pinning)
            body, ex.model = inspected.body, inspected.model
            link.deadline = loop.time() + header_timeout
        elif length or header_value(headers, b"transfer-encoding") is not None:
            body = link.stream_body(limit)
            if length is not None:
                up_headers.append(("Content-Length", str(length)))

            def start_header_clock() -> None:
                link.deadline = loop.time() + header_timeout

            link.on_body_done = start_header_clock
        else:
            body = None
            link.watch()
            link.deadline = loop.time() + header_timeout
        resp = await self._open(scope, up_headers, body, ex)
        try:
            await self._relay(resp, link, send, ex)
        finally:
            # close() drops the connection (the backend sees the abort and frees its slot);
            # a fully read response goes back to the pool instead.
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    async def _open(
        self,
        scope: Scope,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterator[bytes] | None,
        ex: Exchange,
    ) -> aiohttp.ClientResponse:
        """Send the request to a backend and wait for its status line and headers."""
        assert self.session is not None, "the app's lifespan opens the client session"
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        tried: list[Backend] = []
        while True:
            backend = self.pool.pick(ex.model, tried)
            if backend is None:
                raise BadGatewayError(f"no backend reachable ({self.pool.backends[-1].last_error})")
            backend.in_flight += 1
            ex.backend = backend
            try:
                return await self.session.request(
                    ex.method,
                    URL(backend.url + target.decode("latin-1"), encoded=True),
                    headers=headers,
                    data=_payload(body),
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError as exc:
                self.metrics.upstream_errors.labels("connect").inc()
                self.pool.mark_down(backend, f"cannot connect: {exc.os_error}")
                backend.in_flight -= 1
                ex.backend = None
                tried.append(backend)
                # Only a body still in hand can be replayed on another backend.
                if isinstance(body, bytes | None) and len(tried) < len(self.pool.backends):
                    continue
                raise BadGatewayError(f"backend {backend.url} unreachable: {exc.os_error}") from exc
            except aiohttp.ClientError as exc:
                self.metrics.upstream_errors.labels("no_response").inc()
                raise BadGatewayError(
                    f"backend {backend.url} failed before responding: {exc}"
                ) from exc

    async def _relay(
        self, resp: aiohttp.ClientResponse, link: ClientLink, send: Send, ex: Exchange
    ) -> None:
        """Forward status, headers and body chunks as they arrive."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        ex.status = resp.status
        ex.ttfb_s = now - ex.started
        link.in_header_phase = False
        idle = self.config.idle_timeout_s
        link.deadline = now + idle
        out_headers, streaming = downstream_response_headers(resp.raw_headers, self._drop_cors)
        ctype = resp.headers.get("Content-Type", "")
        if streaming:
            ex.stream_kind = (
                "sse" if "event-stream" in ctype else "ndjson" if "ndjson" in ctype else "other"
            )
        await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
        ex.response_started = True
        content = resp.content
        readany, at_eof = content.readany, content.at_eof
        more = True
        try:
            while more and (chunk := await readany()):
                link.deadline = loop.time() + idle
                ex.bytes_out += len(chunk)
                # When the backend's end marker came with this chunk, end the response in the
                # same write (one syscall less per request; nothing is held back).
                more = not at_eof()
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        except aiohttp.ClientError as exc:
            self.metrics.upstream_errors.labels("midstream").inc()
            assert ex.backend is not None
            await self._cut(ex, send, f"backend {ex.backend.url} broke off the response: {exc}")
            return
        if more:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if ex.backend is not None and resp.status == 200:
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
            limit = self.config.max_body_bytes
            await self._fail(
                BodyTooLargeError(f"request body is larger than {limit} bytes"), send, ex
            )
            return
        self.metrics.upstream_errors.labels(reason.value).inc()
        if reason is Abort.HEADER_TIMEOUT:
            timeout = self.config.header_timeout_s
            await self._fail(
                GatewayTimeoutError(f"backend sent no response within {timeout:g} s"), send, ex
            )
            return
        await self._cut(ex, send, f"backend sent nothing for {self.config.idle_timeout_s:g} s")

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

    def _record(self, ex: Exchange, now: float) -> None:
        status = ex.status if ex.response_started else 499
        self.metrics.observe(
            route_label(ex.path), ex.method, str(status), ex.ttfb_s, ex.bytes_out, ex.bytes_in
        )
        if self.config.access_log and access_logger.isEnabledFor(logging.INFO):
            access_logger.info(
                "%s %s %d model=%s backend=%s ttfb_ms=%s duration_ms=%.1f bytes=%d outcome=%s",
                ex.method,
                ex.path,
                status,
                ex.model or "-",
                ex.backend.url if ex.backend else "-",
                "-" if ex.ttfb_s is None else f"{ex.ttfb_s * 1000:.1f}",
                (now - ex.started) * 1000,
                ex.bytes_out,
                ex.outcome,
            )


def _payload(body: bytes | AsyncIterator[bytes] | None) -> Any:
    """aiohttp writes large `bytes` in one blocking call (and warns); a BytesIO is chunked.

    A fresh object per attempt, so a body in hand can be replayed on another backend.
    """
    if isinstance(body, bytes) and len(body) > LARGE_BODY_BYTES:
        return io.BytesIO(body)
    return body


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    raw = header_value(headers, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
