"""`python -m relay.localnode`: run a local NKN test node on loopback (not the real network)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from relay.localnode.config import LocalNodeConfig
from relay.localnode.node import serve


def _parse(argv: list[str]) -> LocalNodeConfig:
    parser = argparse.ArgumentParser(
        prog="python -m relay.localnode",
        description="A local NKN test network node for the real nkn-sdk (offline use and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=30002, help="port, 0 = any free (30002)")
    parser.add_argument("--certfile", type=Path, help="TLS certificate: serve https/wss")
    parser.add_argument("--keyfile", type=Path, help="TLS private key for --certfile")
    parser.add_argument(
        "--no-verify-signatures",
        action="store_true",
        help="accept setClient without checking the challenge signature",
    )
    parser.add_argument("--debug", action="store_true", help="log every registration")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return LocalNodeConfig(
            host=args.host,
            port=args.port,
            certfile=args.certfile,
            keyfile=args.keyfile,
            verify_signatures=not args.no_verify_signatures,
        )
    except ValueError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps type checkers content


def _announce(url: str) -> None:
    # The one start line; LocalNode (testing.py) parses the URL from it.
    sys.stdout.write(
        f"NKN local test network (not the real NKN network) listening on {url} "
        f"-- pass rpcServerAddr={url}/ (NKN_BRIDGE_SEED_WS={url}/)\n"
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve until Ctrl-C."""
    config = _parse(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(config, _announce))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
