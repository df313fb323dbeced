"""Running the site: make or check the certificate, then serve the app over HTTPS.

The server is uvicorn behind the front door (`farm.common.frontdoor.serve`), which enforces
the client-facing limits of `SiteSettings` (header sizes and timeouts, keep-alive, the
connection cap) before a request reaches the app. It runs in this process (no workers, no
reloader), so it leaves no child behind. On SIGINT or SIGTERM uvicorn stops accepting, closes
idle connections and gives requests still in flight `SHUTDOWN_GRACE_S` before it cancels them:
a seed RPC call forwarded to a node that never answers must not hold the exit for its whole
10 s timeout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from farm.common.frontdoor import door_config
from farm.common.frontdoor import serve as serve_behind_door
from farm.webdemo.app import create_app
from farm.webdemo.assets import SiteAssets
from farm.webdemo.certs import check_readable, ensure_certificate
from farm.webdemo.settings import SiteSettings

log = logging.getLogger(__name__)

CERT_NAME = "site-cert.pem"
KEY_NAME = "site-key.pem"
SHUTDOWN_GRACE_S = 2


def prepare_certificate(settings: SiteSettings, cert_dir: Path) -> tuple[Path, Path]:
    """(certificate, key): the user's, checked readable, or the self-signed pair in `cert_dir`,
    made on first run."""
    if settings.cert is not None and settings.key is not None:
        check_readable(settings.cert, settings.key)
        return settings.cert, settings.key
    cert, key = cert_dir / CERT_NAME, cert_dir / KEY_NAME
    if ensure_certificate(cert, key):
        log.info("browsers will warn once about this self-signed certificate; accept it")
    return cert, key


def serve(settings: SiteSettings, assets: SiteAssets, cert: Path, key: Path) -> None:
    """Serve the site over HTTPS until SIGINT/SIGTERM (blocks)."""
    serve_behind_door(
        door_config(
            create_app(settings, assets),
            settings,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            graceful_shutdown_s=SHUTDOWN_GRACE_S,
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
    )
