"""`python -m relay.localnode`: run a local NKN test node on loopback (not the real network).

Its settings are `relay.localnode.settings.LocalNodeSettings`; the one start line names the
URL to pass as the SDK's `rpcServerAddr` (or the relay's `--nkn-rpc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from farm.settings import Loaded, run_main
from relay.localnode.node import serve
from relay.localnode.settings import LocalNodeSettings


def _announce(url: str) -> None:
    # The one start line; LocalNode (relay.localnode.child) parses the URL from it.
    sys.stdout.write(
        f"NKN local test network (not the real NKN network) listening on {url} "
        f"-- pass rpcServerAddr={url}/ (NKN_BRIDGE_SEED_WS={url}/)\n"
    )
    sys.stdout.flush()


def _serve(loaded: Loaded[LocalNodeSettings]) -> int:
    settings = loaded.settings
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, _announce))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Load the settings and serve until Ctrl-C; 2 on a bad setting."""
    return run_main(LocalNodeSettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
