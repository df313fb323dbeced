"""Run the Ollama simulator: `python -m farm.sim [flags]` (a synthetic, model-free backend).

Flags, variables and help come from `SimSettings`; `--print-config` shows the effective
settings and where each came from.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from farm.settings import Loaded, run_main
from farm.sim.app import create_app
from farm.sim.settings import SimSettings


def _serve(loaded: Loaded[SimSettings]) -> int:
    """Say that this is synthetic, then serve until interrupted."""
    settings = loaded.settings
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    print(
        f"ollama-farm simulator: SYNTHETIC Ollama backend (no model, no GPU) on "
        f"http://{settings.host}:{settings.port} (num_parallel={settings.num_parallel})",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        server_header=False,
        lifespan="on",
        # A stalled stream (fault injection) must not keep the process alive forever.
        timeout_graceful_shutdown=3,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: load `SimSettings` from flags and environment, then serve."""
    return run_main(SimSettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
