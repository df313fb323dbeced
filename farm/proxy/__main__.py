"""Run the stream-preserving proxy: `python -m farm.proxy --backend URL [--backend URL ...]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from farm.proxy.config import DEFAULT_PORT, ProxyConfig
from farm.proxy.errors import ConfigError
from farm.proxy.server import serve


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m farm.proxy", description=__doc__)
    p.add_argument(
        "--backend",
        action="append",
        dest="backends",
        metavar="URL",
        help="Ollama backend URL (repeat for replicas; env FARM_PROXY_BACKENDS)",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port to bind (default {DEFAULT_PORT})")
    p.add_argument("--model", help="the farm's model (reported by /_health, gates readiness)")
    p.add_argument("--num-parallel", type=int, help="the backend's slots (reported by /_health)")
    p.add_argument("--pin-num-ctx", type=int, help="num_ctx for requests that omit it")
    p.add_argument("--pin-num-gpu", type=int, help="num_gpu for requests that omit it")
    p.add_argument("--api-key", help="require Authorization: Bearer KEY (env FARM_API_KEY)")
    p.add_argument(
        "--cors-origins",
        nargs="+",
        metavar="ORIGIN",
        help="browser origins allowed to call the proxy ('*' for any)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        dest="header_timeout_s",
        help="seconds to wait for a backend's first byte (default 900)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        dest="idle_timeout_s",
        help="seconds allowed between two bytes of a response (default 300)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        dest="connect_timeout_s",
        help="seconds to open a backend connection (default 5)",
    )
    p.add_argument("--max-body-bytes", type=int, help="reject larger request bodies (413)")
    p.add_argument(
        "--health-interval",
        type=float,
        dest="health_interval_s",
        help="seconds between backend health probes (default 2)",
    )
    p.add_argument(
        "--no-access-log",
        action="store_false",
        dest="access_log",
        default=None,
        help="do not log one line per request",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build a `ProxyConfig` and serve; returns the exit status."""
    args = vars(_parser().parse_args(argv))
    logging.basicConfig(
        level=args["log_level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.get("backends"):
        args["backends"] = tuple(args["backends"])
    if args.get("cors_origins"):
        args["cors_origins"] = tuple(args["cors_origins"])
    try:
        config = ProxyConfig.from_env(os.environ, **args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
