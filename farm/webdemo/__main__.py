"""`python -m farm.webdemo`: serve the demo page over HTTPS (default https://127.0.0.1:8443/)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from farm.webdemo.config import SiteConfig
from farm.webdemo.errors import SiteError
from farm.webdemo.server import prepare_certificate, serve


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the config, print the URL and serve."""
    parser = argparse.ArgumentParser(prog="python -m farm.webdemo", description=__doc__)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8443)")
    parser.add_argument("--cert", type=Path, help="your TLS certificate (PEM), with --key")
    parser.add_argument("--key", type=Path, help="your TLS private key (PEM), with --cert")
    parser.add_argument("--proxy-url", help="the farm proxy (default http://127.0.0.1:8080)")
    parser.add_argument("--relay-address", help="the relay's NKN address, for the NKN path")
    parser.add_argument("--relay-service", help="the relay's service name (default ollama)")
    parser.add_argument("--nkn-rpc", help="NKN seed RPC URL (a local node; default mainnet)")
    parser.add_argument("--model", dest="default_model", help="model preselected on the page")
    parser.add_argument(
        "--relay-ping-timeout",
        dest="relay_ping_timeout_s",
        type=float,
        help="seconds the page waits for the relay's relay.pong before calling it unreachable (8)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = SiteConfig.from_env(os.environ, **vars(args))
        prepare_certificate(config)
    except SiteError as exc:
        parser.exit(2, f"error: {exc}\n")
    # The one line users look for; flushed so wrappers reading our stdout see it at once.
    print(f"ollama-farm demo site: {config.url}", flush=True)
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
