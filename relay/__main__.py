"""`python -m relay [--env-file .env] [--debug]`: run the NKN relay in front of the farm proxy.

Creates `.env` on first run (fresh NKN seed, mode 0600), connects to NKN through the Node
bridge, prints `NKN ready: <address>` and serves the DM API until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from rich.live import Live

from relay.config import RelayConfig, load_environ
from relay.debugview import DmView
from relay.errors import ConfigError
from relay.server import serve_over
from relay.transport import Transport


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the configs, run the relay; 2 on a bad setting, 1 if NKN fails."""
    parser = argparse.ArgumentParser(prog="python -m relay", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", default=".env", help="settings file (created if missing)")
    parser.add_argument("--debug", action="store_true", help="live view of incoming/outgoing DMs")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # Imported here: the bridge package is only needed to actually join NKN.
    from relay.bridge import BridgeConfig, BridgeError, NknTransport

    try:
        environ = load_environ(Path(args.env_file))
        config = RelayConfig.from_env(environ)
        bridge = BridgeConfig.from_env(environ)
    except (ConfigError, BridgeError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    try:
        # Ctrl-C or SIGTERM: serve_over closes the transport, so no bridge process is left.
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(_run(config, NknTransport(bridge), debug=args.debug))
    except BridgeError as exc:
        print(f"relay: NKN bridge failed: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(config: RelayConfig, transport: Transport, *, debug: bool) -> None:
    view = DmView() if debug else None
    live: Live | None = None
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    def ready(address: str) -> None:
        nonlocal live
        print(f"NKN ready: {address}", flush=True)
        if view is not None:
            view.address = address
            live = Live(get_renderable=view.render, refresh_per_second=4)
            live.start()

    try:
        observer = None if view is None else view.record
        await serve_over(config, transport, observer=observer, on_ready=ready)
    finally:
        if live is not None:
            live.stop()


if __name__ == "__main__":
    sys.exit(main())
