"""The streaming hot path: forward one request to a backend and its response back, unbuffered.

A raw ASGI handler (a FastAPI route with httpx measured several ms slower per request)
with the lean client of `farm.proxy.upstream`. Bytes are relayed as the backend's socket
delivers them. Where the front door offers a `DirectLine`, a chunked body is relayed
directly: the upstream connection writes each read to the client's transport itself, and
the client transport's flow control pauses the backend's socket (TCP back-pressure end to
end); with no named keys and no CORS even the head and first chunk go out from the
upstream callback (`farm.proxy.hotpath`). The response still ends with one `send()`. Where
that does not apply (HEAD, 204/304, Content-Length bodies, a body already whole, named
keys counting tokens, another ASGI server) each chunk goes through `await send()`, which
carries the same back-pressure. Either way nothing queues up in the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from farm.common.frontdoor.direct import DIRECT_LINE, DirectLine
from farm.proxy.admission import Admission
from farm.proxy.errors import (
    BadGatewayError,
    BodyTooLargeError,
    GatewayTimeoutError,
    OutOfDescriptorsError,
    ProxyError,
    StreamCutError,
    TooManyRequestsError,
    UnauthorizedError,
    error_body,
    stream_error_event,
)
from farm.proxy.exchange import Exchange, record_exchange
from farm.proxy.headers import downstream_response_headers, header_value, upstream_request_headers
from farm.proxy.hotpath import EarlyHead, stream_kind
from farm.proxy.link import Abort, ClientDisconnected, ClientLink, DeadlineSweeper
from farm.proxy.metrics import ProxyMetrics
from farm.proxy.payload import UPLOAD_PREFIXES, Pinning, inspect_body, wants_parsing
from farm.proxy.pool import Backend, BackendPool
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
        admission: Admission,
        drop_headers: frozenset[bytes],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.sweeper = sweeper
        self.admission = admission
        # Backends that join later (`--backend-dns`) get their pools on first use.
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
            now = loop.time()
            if ex.admitted is not None:
                status = ex.status if ex.response_started else 499
                row = self.admission.finish(ex.admitted, ex.model, status, ex.started, now)
                if row is not None and self.admission.usage is not None:
                    self.admission.usage.submit(row)  # a request that did not finish cleanly
            record_exchange(ex, now, self.metrics, self.settings.access_log)

    async def _handle(self, scope: Scope, link: ClientLink, send: Send, ex: Exchange) -> None:
        headers = scope["headers"]
        ex.admitted = self.admission.principal(ex.method, ex.path, headers)
        length = _content_length(headers)
        limit = self.body_limit(ex.path)
        if limit is not None and length is not None and length > limit:
            raise _too_large(limit, ex.path, length)
        up_headers = upstream_request_headers(headers, self._drop)
        body, framing = await self._request_body(ex, headers, length, link, limit)
        if ex.admitted is not None:
            # After the body: the link now watches for the client leaving, which cancels
            # this wait and takes the request out of the fair queue at once.
            await self.admission.admit(ex.admitted, ex.path)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        line: DirectLine | None = (scope.get("extensions") or {}).get(DIRECT_LINE)
        early = self._early_head(ex, link, line)
        conn, pool = await self._open(ex, target, up_headers, framing, body, early)
        try:
            await self._relay(conn, link, send, ex, line, early)
        finally:
            # An unfinished response closes the connection: the backend sees the abort and
            # frees its slot. A finished one goes back to the pool, unless its backend is
            # draining (it left the pool: nothing would reuse the connection).
            if ex.backend is not None and ex.backend.draining:
                conn.close()
            else:
                pool.release(conn)

    def upstream(self, backend: Backend) -> UpstreamPool:
        """The connection pool for `backend`, made on first use."""
        pool = self.upstreams.get(backend.url)
        if pool is None:
            pool = self.upstreams[backend.url] = _upstream_pool(backend.url, self.settings)
        return pool

    def forget(self, backends: list[Backend]) -> None:
        """Close the idle connections of backends that left the pool for good."""
        for backend in backends:
            pool = self.upstreams.pop(backend.url, None)
            if pool is not None:
                pool.close()

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
        early: EarlyHead | None = None,
    ) -> tuple[Connection, UpstreamPool]:
        """Send the request to a backend and wait for its status line and headers
        (`early`, if given, may already have started the response from the head).

        Failover, before the first response byte only (after it, the client has seen part
        of one backend's answer, and a second answer cannot be spliced on):
        - the connection is refused (or cannot be opened in time): the request never left
          the proxy, so it goes to the next backend, every backend at most once;
        - the backend accepted the request, then reset or closed the connection without one
          response byte (a crash, an OOM kill): it may have begun the work, so the request
          goes once more, to one other backend that is up, and no further.
        Either needs the body still in hand: a body read whole (every inference request) or
        none can be sent again; a streamed one (uploads) only while not one byte has been
        read from the client, which is the refused case (connecting comes before sending).
        """
        replayable = not isinstance(body, AsyncIterator)
        tried: list[Backend] = []
        delivered_once = False  # a backend got the request and reset: no second such try
        while True:
            backend = self.pool.pick(ex.model, tried, up_only=delivered_once)
            if backend is None:
                raise BadGatewayError(self._none_left(tried))
            pool = self.upstream(backend)
            backend.in_flight += 1
            ex.backend = backend
            head = request_head(ex.method, target, pool.host_header, headers, framing)
            try:
                return await self._exchange_head(
                    pool, head, body, ex.method, framing, replayable, early
                )
            except OutOfDescriptors as exc:
                logger.warning("no file descriptor left for a backend connection: %s", exc)
                raise OutOfDescriptorsError(
                    "proxy is out of file descriptors (raise ulimit -n); retry later"
                ) from exc
            except ConnectFailed as exc:
                self.metrics.upstream_errors.labels("connect").inc()
                self.pool.mark_down(backend, f"cannot connect: {exc}")
                if not self.pool.candidates([*tried, backend], up_only=delivered_once):
                    raise BadGatewayError(f"backend {backend.url} unreachable: {exc}") from exc
                reason, failed = "connect", str(exc)
            except ResponseBroken as exc:
                self.metrics.upstream_errors.labels("no_response").inc()
                message = f"backend {backend.url} failed before responding: {exc}"
                if delivered_once or not (exc.before_any_byte and replayable):
                    raise BadGatewayError(message) from exc
                # Not marked down: the request itself may be what broke it (the probes
                # judge the backend); and a poison request breaks two backends at most.
                if not self.pool.candidates([*tried, backend], up_only=True):
                    raise BadGatewayError(message) from exc
                delivered_once = True
                reason, failed = "reset", str(exc)
            backend.in_flight -= 1
            ex.backend = None
            tried.append(backend)
            self.metrics.failovers.labels(reason).inc()
            logger.info(
                "%s %s: %s: %s; trying another backend", ex.method, ex.path, backend.url, failed
            )

    def _none_left(self, tried: list[Backend]) -> str:
        if not self.pool.backends:
            names = ", ".join(self.settings.backend_dns) or "the backend list"
            return f"no backend: {names} resolves to no address"
        last = tried[-1] if tried else self.pool.backends[-1]
        return f"no backend reachable ({last.last_error})"

    async def _exchange_head(
        self,
        pool: UpstreamPool,
        head: bytes,
        body: Body,
        method: str,
        framing: bytes,
        replayable: bool,
        early: EarlyHead | None = None,
    ) -> tuple[Connection, UpstreamPool]:
        chunked = framing.startswith(b"transfer-encoding")
        for attempt in (1, 2):
            conn, reused = await pool.acquire()
            try:
                conn.on_head = early
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

    async def _relay(
        self,
        conn: Connection,
        link: ClientLink,
        send: Send,
        ex: Exchange,
        line: DirectLine | None = None,
        early: EarlyHead | None = None,
    ) -> None:
        """Forward status, headers and body chunks as they arrive."""
        if early is not None and early.started and line is not None:
            await self._relay_direct(conn, line, send, ex)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        ex.status = conn.status
        ex.ttfb_s = now - ex.started
        link.in_header_phase = False
        idle = self.settings.idle_timeout
        link.deadline = now + idle
        out_headers, streaming = downstream_response_headers(conn.raw_headers, self._drop_cors)
        if streaming:
            ex.stream_kind = stream_kind(out_headers)
        await send({"type": "http.response.start", "status": conn.status, "headers": out_headers})
        ex.response_started = True
        read, at_eof = conn.read, conn.at_eof
        adm = ex.admitted
        tally = None if adm is None else self.admission.tally(adm, ex.stream_kind, now)
        if line is not None and not at_eof() and conn.error is None:
            sink = line.open(conn)
            if sink is not None:
                conn.tap = None if tally is None else tally.feed
                conn.relay_to(sink, link, idle)
                await self._relay_direct(conn, line, send, ex)
                return
        more = True
        try:
            while more and (chunk := await read()):
                link.deadline = loop.time() + idle
                ex.bytes_out += len(chunk)
                # When the backend's end marker came with this chunk, end the response in the
                # same write (one syscall less per request; nothing is held back).
                more = not at_eof()
                if tally is not None:
                    tally.feed(chunk)
                    if not more:  # usage is committed before the client sees the end
                        await self._account(ex, conn.status)
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        except ResponseBroken as exc:
            self.metrics.upstream_errors.labels("midstream").inc()
            assert ex.backend is not None
            await self._cut(ex, send, f"backend {ex.backend.url} broke off the response: {exc}")
            return
        if more:
            if tally is not None:
                await self._account(ex, conn.status)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if ex.backend is not None and conn.status == 200:
            self.pool.record_served(ex.backend, ex.model)

    def _early_head(
        self, ex: Exchange, link: ClientLink, line: DirectLine | None
    ) -> EarlyHead | None:
        """An `EarlyHead` where nothing must see the response on its way (see its module)."""
        if line is None or self._drop_cors or ex.method == "HEAD":
            return None
        adm = ex.admitted
        if adm is None:
            return EarlyHead(line, ex, link, self.settings.idle_timeout)

        def tap(kind: str, now: float) -> Callable[[bytes], None]:
            return self.admission.tally(adm, kind, now).feed

        return EarlyHead(line, ex, link, self.settings.idle_timeout, tap)

    async def _relay_direct(
        self, conn: Connection, line: DirectLine, send: Send, ex: Exchange
    ) -> None:
        """Wait for the body `conn` relays directly; then the last bytes and the end marker
        in one `send()` (or an in-band error line if the backend broke off)."""
        try:
            await conn.relay_done()
        finally:
            # Also on cancellation (the client left, the idle deadline passed): nothing more
            # goes to the client from the connection, which the caller then closes.
            line.close()
            tail = conn.finish_relay()
            ex.bytes_out += conn.relayed_bytes
        if conn.error is not None:
            self.metrics.upstream_errors.labels("midstream").inc()
            assert ex.backend is not None
            message = f"backend {ex.backend.url} broke off the response: {conn.error}"
            await self._cut(ex, send, message)
            return
        if ex.admitted is not None:
            await self._account(ex, conn.status)  # committed before the client sees the end
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        if ex.backend is not None and conn.status == 200:
            self.pool.record_served(ex.backend, ex.model)

    async def _account(self, ex: Exchange, status: int) -> None:
        assert ex.admitted is not None
        now = asyncio.get_running_loop().time()
        row = self.admission.finish(ex.admitted, ex.model, status, ex.started, now)
        if row is not None and self.admission.usage is not None:
            await self.admission.usage.write(row)

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
        elif isinstance(exc, TooManyRequestsError):
            headers.append((b"retry-after", b"%d" % max(1, round(exc.retry_after_s))))
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
