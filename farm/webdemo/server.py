"""Running the site: make or check the certificate, then serve the app over HTTPS."""

from __future__ import annotations

import logging

import uvicorn

from farm.webdemo.app import create_app
from farm.webdemo.certs import check_readable, ensure_certificate
from farm.webdemo.config import SiteConfig

log = logging.getLogger(__name__)


def prepare_certificate(config: SiteConfig) -> None:
    """Check the user's certificate, or make the self-signed one on first run."""
    if config.own_cert:
        check_readable(config.cert, config.key)
    elif ensure_certificate(config.cert, config.key):
        log.info("browsers will warn once about this self-signed certificate; accept it")


def serve(config: SiteConfig) -> None:
    """Serve the site over HTTPS until interrupted (blocks)."""
    prepare_certificate(config)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            ssl_certfile=str(config.cert),
            ssl_keyfile=str(config.key),
            log_level="warning",
        )
    )
    server.run()
