"""Running the proxy: uvicorn with uvloop and httptools, configured from a `ProxySettings`."""

from __future__ import annotations

import logging

import uvicorn

from farm.proxy.app import create_app
from farm.proxy.errors import StreamCutError
from farm.proxy.settings import ProxySettings

logger = logging.getLogger(__name__)

# Long streams must not hold shutdown forever; clients see their stream cut.
GRACEFUL_SHUTDOWN_S = 5


class _DropStreamCutTraces(logging.Filter):
    """Uvicorn logs a traceback for any app exception; a cut stream is already logged once."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCutError)


def security_warnings(settings: ProxySettings) -> list[str]:
    """Warnings to show at start: an open proxy on a non-loopback address."""
    if settings.api_key is None and not settings.binds_loopback:
        return [
            f"binding {settings.host} without an API key: anyone who can reach this address can "
            "use the model (set FARM_API_KEY or --api-key)"
        ]
    return []


def serve(settings: ProxySettings) -> None:
    """Run the proxy in the foreground until interrupted."""
    for warning in security_warnings(settings):
        logger.warning(warning)
    logging.getLogger("uvicorn.error").addFilter(_DropStreamCutTraces())
    uv_config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        # The proxy writes its own access line per request (with model, TTFB, abort flag).
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # The backend's Server and Date headers pass through; uvicorn must not add a second.
        server_header=False,
        date_header=False,
        # The proxy does not act on X-Forwarded-* from its clients; skip that middleware.
        proxy_headers=False,
    )
    logger.info(
        "proxy on http://%s:%d -> %s", settings.host, settings.port, ", ".join(settings.backend)
    )
    uvicorn.Server(uv_config).run()
