"""Run the stream-preserving proxy: `python -m farm.proxy --backend URL [--backend URL ...]`.

Flags, variables and help come from `ProxySettings`; `--print-config` shows the effective
settings and where each came from.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from farm.keys.errors import KeysError
from farm.proxy.server import serve
from farm.proxy.settings import ProxySettings
from farm.settings import Loaded, run_main


def _serve(loaded: Loaded[ProxySettings]) -> int:
    settings = loaded.settings
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(settings)
    except KeysError as exc:
        sys.stderr.write(f"{ProxySettings.prog}: error: --keys-db: {exc}\n")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Load `ProxySettings` from flags and environment and serve; returns the exit status."""
    return run_main(ProxySettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
