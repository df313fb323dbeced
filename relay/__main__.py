"""`python -m relay [--env-file .env] [--debug]`: run the NKN relay in front of the farm proxy.

Creates `.env` on first run (fresh NKN seed, mode 0600), connects to NKN through the Node
bridge, prints `NKN ready: <address>` and serves the DM API until Ctrl-C. Every setting is
declared in `relay.settings.RelaySettings`; `--print-config` shows them and where each came
from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping, Sequence

from rich.live import Live

from farm.settings import Loaded, SettingsError, load, process_environ, run_main
from relay.bridge import BridgeConfig, BridgeError, NknTransport
from relay.debugview import DmView
from relay.envfile import ensure_env_file
from relay.server import serve_over
from relay.settings import RelaySettings
from relay.transport import Transport


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Load the settings, run the relay; 2 on a bad setting, 1 if NKN fails."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = process_environ() if environ is None else environ
    return run_main(RelaySettings, lambda loaded: _serve(loaded, args), args, env)


def _serve(loaded: Loaded[RelaySettings], argv: list[str]) -> int:
    settings = loaded.settings
    logging.basicConfig(
        level=settings.log_level_number, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if ensure_env_file(settings.env_file):
            # First run: the new file's seed and defaults count like any other `.env`.
            settings = load(RelaySettings, argv, loaded.environ).settings
        bridge = settings.bridge_config(loaded.environ)
    except OSError as exc:
        return _fail(f"{settings.env_file}: cannot create ({exc})", 2)
    except (SettingsError, BridgeError) as exc:
        return _fail(str(exc), 2)
    try:
        # Ctrl-C or SIGTERM: serve_over closes the transport, so no bridge process is left.
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(_run(settings, bridge))
    except BridgeError as exc:
        return _fail(f"NKN bridge failed: {exc}", 1)
    return 0


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{RelaySettings.prog}: error: {message}\n")
    return code


async def _run(settings: RelaySettings, bridge: BridgeConfig) -> None:
    transport: Transport = NknTransport(bridge)
    view = DmView() if settings.debug else None
    live: Live | None = None
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    def ready(address: str) -> None:
        nonlocal live
        sys.stdout.write(f"NKN ready: {address}\n")
        sys.stdout.flush()
        if view is not None:
            view.address = address
            live = Live(get_renderable=view.render, refresh_per_second=4)
            live.start()

    try:
        observer = None if view is None else view.record
        await serve_over(settings, transport, observer=observer, on_ready=ready)
    finally:
        if live is not None:
            live.stop()


if __name__ == "__main__":
    sys.exit(main())
