"""The site's ASGI app: the page, its assets, the nkn-sdk browser build and `/config.json`.

Only an explicit list of files is served: the `site/` folder also holds the TLS key
(`site/certs/`), so nothing is ever served by path from it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from farm.webdemo.config import SiteConfig

log = logging.getLogger(__name__)

# URL path -> (file name in site/, media type).
PAGE_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/streams.js": ("streams.js", "text/javascript; charset=utf-8"),
    "/nkn-path.js": ("nkn-path.js", "text/javascript; charset=utf-8"),
    "/chart.js": ("chart.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
NKN_SDK_FILE = "nkn.min.js"
NKN_SDK_PATH = "/vendor/nkn.min.js"

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


def nkn_sdk_problem(config: SiteConfig) -> str | None:
    """Why the browser build of nkn-sdk cannot be served, or None when it can."""
    if (config.nkn_sdk_dir / NKN_SDK_FILE).is_file():
        return None
    return (
        f"nkn-sdk browser build not found at {config.nkn_sdk_dir / NKN_SDK_FILE}; install the "
        "relay's pinned Node packages: npm ci --prefix relay/bridge"
    )


def public_config(config: SiteConfig) -> dict[str, Any]:
    """The settings the page reads from `/config.json` (nothing secret)."""
    return {
        "proxy_url": config.proxy_url.rstrip("/"),
        "relay_address": config.relay_address,
        "relay_service": config.relay_service,
        "nkn_rpc": config.nkn_rpc,
        "nkn_tls": config.nkn_tls,
        "default_model": config.default_model,
        "nkn_sdk": NKN_SDK_PATH if nkn_sdk_problem(config) is None else None,
        "nkn_sdk_problem": nkn_sdk_problem(config),
        "streams_max": 32,
    }


def create_app(config: SiteConfig) -> Starlette:
    """Build the site's ASGI app from its config."""

    def page_file(url_path: str, name: str, media_type: str) -> Route:
        path = config.site_dir / name

        async def endpoint(request: Request) -> Response:
            return _file(path, media_type)

        return Route(url_path, endpoint, methods=["GET", "HEAD"], name=name)

    async def config_json(request: Request) -> Response:
        return JSONResponse(public_config(config), headers=SECURITY_HEADERS)

    async def nkn_sdk(request: Request) -> Response:
        problem = nkn_sdk_problem(config)
        if problem is not None:
            return PlainTextResponse(problem, status_code=404, headers=SECURITY_HEADERS)
        return _file(config.nkn_sdk_dir / NKN_SDK_FILE, "text/javascript; charset=utf-8")

    routes = [page_file(url, name, media) for url, (name, media) in PAGE_FILES.items()]
    routes.append(Route("/config.json", config_json, methods=["GET", "HEAD"]))
    routes.append(Route(NKN_SDK_PATH, nkn_sdk, methods=["GET", "HEAD"]))
    if (problem := nkn_sdk_problem(config)) is not None:
        log.warning("%s; the NKN path is off until then", problem)
    return Starlette(routes=routes)


def _file(path: Path, media_type: str) -> Response:
    if not path.is_file():
        log.error("page file missing: %s", path)
        return PlainTextResponse(f"{path.name} is missing", 404, headers=SECURITY_HEADERS)
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)
