"""Running the proxy: its app behind the front door (uvicorn, uvloop, the guarded httptools
protocol), configured from a `ProxySettings`."""

from __future__ import annotations

import logging

from farm.common.frontdoor import door_config
from farm.common.frontdoor import serve as serve_app
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
    if settings.api_key is None and settings.keys_db is None and not settings.binds_loopback:
        return [
            f"binding {settings.host} without an API key: anyone who can reach this address can "
            "use the model (set FARM_API_KEY, or add keys: invoke keys.add NAME)"
        ]
    return []


def serve(settings: ProxySettings) -> None:
    """Run the proxy in the foreground until interrupted."""
    for warning in security_warnings(settings):
        logger.warning(warning)
    logging.getLogger("uvicorn.error").addFilter(_DropStreamCutTraces())
    targets = [*settings.backend, *(f"dns {t}" for t in settings.backend_dns)]
    logger.info("proxy on http://%s:%d -> %s", settings.host, settings.port, ", ".join(targets))
    serve_app(
        door_config(
            create_app(settings),
            settings,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # The proxy writes its own access line per request (with model, TTFB, abort flag).
            access_log=False,
            # The backend's Server and Date headers pass through; uvicorn must not add a second.
            server_header=False,
            date_header=False,
            graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
        )
    )
