"""The site's ASGI app: the page, its assets, the nkn-sdk browser build and `/config.json`.

Only an explicit list of files is served: the page's folder in a checkout also holds the TLS
key (`site/certs/`), so nothing is ever served by path from it. Where the files are is the
resolver's business (`farm.webdemo.assets`).
"""

from __future__ import annotations

import json
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
from farm.webdemo.settings import SiteSettings

log = logging.getLogger(__name__)

# URL path -> (file name in the page's folder, media type).
PAGE_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/streams.js": ("streams.js", "text/javascript; charset=utf-8"),
    "/nkn-path.js": ("nkn-path.js", "text/javascript; charset=utf-8"),
    "/chart.js": ("chart.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
NKN_SDK_PATH = "/vendor/nkn.min.js"
NKN_RPC_PATH = "/nkn-rpc"
# The JSON-RPC methods nkn-sdk's client calls on its seed node to connect; nothing else is
# forwarded, so the forwarder cannot be used to drive the node's other methods.
NKN_RPC_METHODS = frozenset(
    {"getwsaddr", "getwssaddr", "getnodestate", "getregistrant", "getlatestblockhash"}
)
NKN_RPC_MAX_BODY = 16 * 1024

# The page talks to the proxy and NKN nodes on other origins (http, ws, or wss), so
# connect-src is open; scripts come only from this server. nkn-sdk's crypto runs
# WebAssembly, which CSP allows only with 'wasm-unsafe-eval'.
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' http: https: ws: wss:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


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
        doc["synthetic"] = await _proxy_is_synthetic(settings, request.app.state.http)
        return JSONResponse(doc, headers=SECURITY_HEADERS)

    async def nkn_sdk(request: Request) -> Response:
        problem = found.nkn_sdk_problem
        if problem is not None:
            return PlainTextResponse(problem, status_code=404, headers=SECURITY_HEADERS)
        return _file(found.nkn_sdk, "text/javascript; charset=utf-8")

    async def rpc_forward(request: Request) -> Response:
        # nkn-sdk POSTs JSON-RPC with axios; a node that sends no CORS headers (the local test
        # node) cannot be called cross-origin from the page, so the page calls us instead.
        return await _forward_rpc(request, settings, request.app.state.http)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            app.state.http = client
            yield

    routes = [page_file(url, name, media) for url, (name, media) in PAGE_FILES.items()]
    routes.append(Route("/config.json", config_json, methods=["GET", "HEAD"]))
    routes.append(Route(NKN_SDK_PATH, nkn_sdk, methods=["GET", "HEAD"]))
    routes.append(Route(NKN_RPC_PATH, rpc_forward, methods=["POST"]))
    if (problem := found.nkn_sdk_problem) is not None:
        log.warning("%s; the NKN path is off until then", problem)
    return Starlette(routes=routes, lifespan=lifespan)


async def _proxy_is_synthetic(settings: SiteSettings, client: httpx.AsyncClient) -> bool:
    """Whether the proxy's `/_health` says a backend is the simulator, so the page can say so.

    Asked here rather than from the page, which may run over NKN alone and then has no CORS
    access to the proxy. An unreachable proxy is not an error here: a run reports it.
    """
    try:
        response = await client.get(settings.proxy_url.rstrip("/") + "/_health", timeout=2.0)
        return response.json().get("synthetic") is True
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _file(path: Path, media_type: str) -> Response:
    if not path.is_file():
        log.error("page file missing: %s", path)
        return PlainTextResponse(f"{path.name} is missing", 404, headers=SECURITY_HEADERS)
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


async def _forward_rpc(
    request: Request, settings: SiteSettings, client: httpx.AsyncClient
) -> Response:
    """Pass one of nkn-sdk's seed RPC calls to the configured node and return its answer."""
    if settings.nkn_rpc is None:
        return _rpc_error(404, "no NKN seed RPC configured (--nkn-rpc)")
    # Only JSON: a cross-site form or text/plain POST (no CORS preflight) is refused outright.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _rpc_error(415, "expected Content-Type: application/json")
    body = await request.body()
    if len(body) > NKN_RPC_MAX_BODY:
        return _rpc_error(413, f"RPC body over {NKN_RPC_MAX_BODY} bytes")
    try:
        call = json.loads(body)
        method = call["method"]
    except (ValueError, KeyError, TypeError):
        return _rpc_error(400, "expected a JSON-RPC object with a method")
    if method not in NKN_RPC_METHODS:
        return _rpc_error(403, f"method {method!r} is not forwarded")
    try:
        upstream = await client.post(settings.nkn_rpc, json=call)
    except httpx.HTTPError as exc:
        log.warning("NKN seed RPC %s failed: %s", settings.nkn_rpc, exc)
        return _rpc_error(502, f"NKN seed RPC unreachable: {exc}")
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type="application/json",
        headers=SECURITY_HEADERS,
    )


def _rpc_error(status: int, message: str) -> Response:
    return JSONResponse({"error": {"code": status, "message": message}}, status, SECURITY_HEADERS)
