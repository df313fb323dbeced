"""The site's ASGI app: the page, its assets, the nkn-sdk browser build, `/config.json`,
the farm's capacity `/farm.json` (`farm.webdemo.capacity`) and the seed RPC forwarder
`/nkn-rpc` (`farm.webdemo.seedrpc`).

Only an explicit list of files is served, each route an exact path: the page's folder in a
checkout also holds the TLS key (`site/certs/`), so nothing is ever served by path from it, and
no spelling of a path (dot segments, encoded dots or slashes, backslashes) can reach a file off
the list. Where the files are is the resolver's business (`farm.webdemo.assets`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from farm.webdemo.assets import SiteAssets, locate
from farm.webdemo.capacity import read_farm
from farm.webdemo.headers import SECURITY_HEADERS
from farm.webdemo.ratelimit import RateLimiter
from farm.webdemo.seedrpc import forward
from farm.webdemo.settings import SiteSettings

log = logging.getLogger(__name__)

# URL path -> (file name in the page's folder, media type).
PAGE_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/streams.js": ("streams.js", "text/javascript; charset=utf-8"),
    "/nkn-path.js": ("nkn-path.js", "text/javascript; charset=utf-8"),
    "/chart.js": ("chart.js", "text/javascript; charset=utf-8"),
    "/phases.js": ("phases.js", "text/javascript; charset=utf-8"),
    "/measure.js": ("measure.js", "text/javascript; charset=utf-8"),
    "/liveness.js": ("liveness.js", "text/javascript; charset=utf-8"),
    "/render.js": ("render.js", "text/javascript; charset=utf-8"),
    "/inputs.js": ("inputs.js", "text/javascript; charset=utf-8"),
    "/models.js": ("models.js", "text/javascript; charset=utf-8"),
    "/nkn-client.js": ("nkn-client.js", "text/javascript; charset=utf-8"),
    "/nkn-frames.js": ("nkn-frames.js", "text/javascript; charset=utf-8"),
    "/nkn-mux.js": ("nkn-mux.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
NKN_SDK_PATH = "/vendor/nkn.min.js"
NKN_RPC_PATH = "/nkn-rpc"


def public_config(settings: SiteSettings, assets: SiteAssets) -> dict[str, Any]:
    """The settings the page reads from `/config.json` (nothing secret)."""
    problem = assets.nkn_sdk_problem
    return {
        "proxy_url": settings.proxy_url.rstrip("/"),
        "relay_address": settings.relay_address,
        "relay_service": settings.relay_service,
        # The browser reaches a configured node's RPC through this server (see rpc_forward).
        "nkn_rpc": NKN_RPC_PATH if settings.nkn_rpc else None,
        "nkn_seed": settings.nkn_rpc or "NKN mainnet",
        "nkn_tls": settings.browser_nkn_tls,
        "default_model": settings.model,
        "relay_ping_timeout_ms": round(settings.relay_ping_timeout * 1000),
        "relay_silence_ms": round(settings.relay_silence * 1000),
        "nkn_sdk": NKN_SDK_PATH if problem is None else None,
        "nkn_sdk_problem": problem,
        "streams_max": 32,
    }


def create_app(settings: SiteSettings, assets: SiteAssets | None = None) -> Starlette:
    """Build the site's ASGI app; `assets` defaults to what the resolver finds (`locate`)."""
    found = assets or locate(settings.nkn_sdk_dir)

    def page_file(url_path: str, name: str, media_type: str) -> Route:
        path = found.page_dir / name

        async def endpoint(request: Request) -> Response:
            return _file(path, media_type)

        return Route(url_path, endpoint, methods=["GET", "HEAD"], name=name)

    async def config_json(request: Request) -> Response:
        doc = public_config(settings, found)
        farm = await read_farm(settings.proxy_url, request.app.state.http)
        doc["synthetic"], doc["engine"] = farm.synthetic, farm.engine
        doc["farm"] = farm.to_json()
        return JSONResponse(doc, headers=SECURITY_HEADERS)

    async def farm_json(request: Request) -> Response:
        farm = await read_farm(settings.proxy_url, request.app.state.http)
        return JSONResponse(farm.to_json(), headers=SECURITY_HEADERS)

    async def nkn_sdk(request: Request) -> Response:
        problem = found.nkn_sdk_problem
        if problem is not None:
            return PlainTextResponse(problem, status_code=404, headers=SECURITY_HEADERS)
        return _file(found.nkn_sdk, "text/javascript; charset=utf-8")

    limiter = RateLimiter(settings.nkn_rpc_rate, settings.nkn_rpc_burst)

    async def rpc_forward(request: Request) -> Response:
        return await forward(request, settings, request.app.state.http, limiter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            app.state.http = client
            yield

    routes = [page_file(url, name, media) for url, (name, media) in PAGE_FILES.items()]
    routes.append(Route("/config.json", config_json, methods=["GET", "HEAD"]))
    routes.append(Route("/farm.json", farm_json, methods=["GET", "HEAD"]))
    routes.append(Route(NKN_SDK_PATH, nkn_sdk, methods=["GET", "HEAD"]))
    routes.append(Route(NKN_RPC_PATH, rpc_forward, methods=["POST"]))
    if (problem := found.nkn_sdk_problem) is not None:
        log.warning("%s; the NKN path is off until then", problem)
    return Starlette(routes=routes, lifespan=lifespan)


def _file(path: Path, media_type: str) -> Response:
    if not path.is_file():
        log.error("page file missing: %s", path)
        return PlainTextResponse(f"{path.name} is missing", 404, headers=SECURITY_HEADERS)
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)
