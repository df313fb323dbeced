"""`create_app(settings)`: the proxy's ASGI application, its lifespan and its top-level routing.

The path is normalised first (`farm.proxy.paths`; a refused one gets 400). Then `/api/*`,
`/v1/*` and `/` go to the raw ASGI `Forwarder` (the hot path); everything else to the FastAPI
control app. CORS, when configured, wraps both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from farm.proxy.admission import Admission
from farm.proxy.control import build_control_app
from farm.proxy.discovery import Discovery, DnsTarget, HostsFileResolver, Resolver, system_resolve
from farm.proxy.errors import BadPathError, error_body
from farm.proxy.forward import Forwarder
from farm.proxy.headers import header_value
from farm.proxy.health import probe, probe_all, probe_forever
from farm.proxy.link import DeadlineSweeper
from farm.proxy.metrics import ProxyMetrics
from farm.proxy.paths import with_normal_path
from farm.proxy.pool import Backend, BackendPool
from farm.proxy.security import CorsPolicy
from farm.proxy.settings import ProxySettings
from farm.proxy.tenants import PEER_HEADER

logger = logging.getLogger(__name__)

FORWARDED_PREFIXES = ("/api/", "/v1/")


class ProxyApp:
    """The ASGI application; all state lives here, created per app (no module globals)."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.pool = BackendPool(settings.backend, settings.num_parallel, settings.labels)
        self.metrics = ProxyMetrics(self.pool)
        tick = max(0.01, min(0.25, settings.header_timeout / 4, settings.idle_timeout / 4))
        self.sweeper = DeadlineSweeper(tick)
        self.admission = Admission(settings, self.pool, self.metrics)
        self.cors = CorsPolicy(settings.cors_origins) if settings.cors_origins else None
        # Only the relay's key may name a peer, and only to the proxy: never forwarded.
        drop = {PEER_HEADER}
        if settings.api_key is not None or settings.keys_db is not None:
            drop.add(b"authorization")  # the proxy's keys are not the backend's business
        if self.cors is not None:
            drop.add(b"origin")
        self.forwarder = Forwarder(
            settings, self.pool, self.metrics, self.sweeper, self.admission, frozenset(drop)
        )
        self.discovery = (
            Discovery(
                self.pool,
                [DnsTarget(name, port) for name, port in settings.dns_targets],
                _resolver(settings),
                self._probe_new,
                self.forwarder.forget,
            )
            if settings.backend_dns
            else None
        )
        self.control = build_control_app(self)
        self.session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                scope = with_normal_path(scope)
            except BadPathError as exc:
                logger.info("%s %r: 400 %s", scope["method"], scope.get("raw_path"), exc)
                await _respond(send, exc.status, error_body(str(exc)))
                return
            if self.cors is not None:
                origin = header_value(scope["headers"], b"origin")
                if origin is not None:
                    await self._cors(origin, scope, receive, send)
                    return
            await self._route(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def _route(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if path.startswith(FORWARDED_PREFIXES) or path == "/":
            await self.forwarder(scope, receive, send)
        else:
            await self.control(scope, receive, send)

    async def _cors(self, origin: bytes, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert self.cors is not None
        headers = scope["headers"]
        if not self.cors.allows(origin):
            await _respond(send, 403, error_body("origin not allowed"))
            return
        if scope["method"] == "OPTIONS" and header_value(headers, b"access-control-request-method"):
            requested = header_value(headers, b"access-control-request-headers")
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": self.cors.preflight_headers(origin, requested),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        extra = self.cors.response_headers(origin)

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *extra]}
            await send(message)

        await self._route(scope, receive, send_with_cors)

    async def startup(self) -> None:
        """Open the upstream session, probe backends once, start the background tasks."""
        # This session only probes backends; requests go through `farm.proxy.upstream`.
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout),
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        if self.discovery is not None:
            await self.discovery.resolve_once()
        await probe_all(self.session, self.pool)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(probe_forever(self.session, self.pool, self.settings.health_interval)),
            loop.create_task(self.sweeper.run()),
        ]
        if self.discovery is not None:
            self._tasks.append(loop.create_task(self.discovery.run(self.settings.dns_interval)))

    async def _probe_new(self, backends: list[Backend]) -> None:
        # A backend that joins is probed at once: until the pool knows which models it
        # holds, model-aware balancing would rank it last.
        if self.session is not None:
            await asyncio.gather(*(probe(self.session, self.pool, b) for b in backends))

    async def shutdown(self) -> None:
        """Stop background tasks and close the session."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.session is not None:
            await self.session.close()
            self.session = None
        for upstream in self.forwarder.upstreams.values():
            upstream.close()
        self.admission.close()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _resolver(settings: ProxySettings) -> Resolver:
    if settings.dns_hosts_file is not None:
        return HostsFileResolver(settings.dns_hosts_file)
    return system_resolve


def create_app(settings: ProxySettings) -> ProxyApp:
    """Build the proxy's ASGI application for `settings`."""
    return ProxyApp(settings)
