"""The control endpoints, served by FastAPI: `GET /_health`, `GET /_health/live` and `GET /metrics`.

The handlers read the proxy's live state through `ProxyState`, a protocol that `ProxyApp`
satisfies, so this module does not import the application that mounts it.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from farm.proxy.discovery import Discovery
from farm.proxy.health import health_document, probe_all
from farm.proxy.metrics import ProxyMetrics
from farm.proxy.pool import BackendPool
from farm.proxy.settings import ProxySettings


class ProxyState(Protocol):
    """What the control endpoints read: settings, pool, metrics and the probe session."""

    @property
    def settings(self) -> ProxySettings: ...

    @property
    def pool(self) -> BackendPool: ...

    @property
    def metrics(self) -> ProxyMetrics: ...

    @property
    def session(self) -> aiohttp.ClientSession | None: ...

    @property
    def discovery(self) -> Discovery | None: ...


def build_control_app(proxy: ProxyState) -> FastAPI:
    """A FastAPI app whose handlers read the proxy's pool and metrics."""
    app = FastAPI(
        title="ollama-farm proxy control", docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.get("/_health")
    async def health() -> JSONResponse:
        """Probe every backend now and report; 200 when ready, 503 when not."""
        if proxy.session is not None:
            await probe_all(proxy.session, proxy.pool)
        found = proxy.discovery.document() if proxy.discovery is not None else None
        doc = health_document(proxy.pool, proxy.settings.model, proxy.settings.num_parallel, found)
        return JSONResponse(doc, status_code=200 if doc["ready"] else 503)

    @app.get("/_health/live")
    async def live() -> JSONResponse:
        """200 while the proxy answers, whatever its backends do (a liveness probe: a farm
        still loading its model must not get its proxy restarted; `/_health` is readiness)."""
        return JSONResponse({"live": True})

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text exposition of the proxy's metrics."""
        return Response(generate_latest(proxy.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(HTTPException)
    async def ollama_shaped(_request: Request, exc: HTTPException) -> JSONResponse:
        # Same error shape as everything else the proxy answers.
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    return app
