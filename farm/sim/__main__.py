"""Run the Ollama simulator: `python -m farm.sim [flags]` (synthetic, or real weights on llama.cpp).

Flags, variables and help come from `SimSettings`; `--print-config` shows the effective
settings and where each came from. The first line printed says which engine answers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from farm.common.frontdoor import BodyLimit, door_config, serve
from farm.common.sizes import binary
from farm.settings import Loaded, run_main
from farm.sim.app import SimApp, create_app
from farm.sim.errors import EngineUnavailable
from farm.sim.settings import SimSettings

SIM_GPU_UUID = "GPU-00000000-0000-4000-8000-0000000051a1"


def banner(app: SimApp) -> str:
    """The startup line: what answers, where, with how many slots."""
    settings, engine = app.config, app.sim.engine
    where = f"http://{settings.host}:{settings.port} (num_parallel={settings.num_parallel})"
    if engine.synthetic:
        return f"ollama-farm simulator: SYNTHETIC Ollama backend (no model, no GPU) on {where}"
    return f"ollama-farm simulator: engine: {engine.label} on {where}"


def gpu_line(app: SimApp) -> str | None:
    """With `--vram-mib`, the GPU as Ollama logs it at start (`msg="inference compute"`), so
    that whoever reads a backend's log for its GPU memory reads the simulator's the same way."""
    mib = app.config.vram_mib
    if mib is None or not app.sim.engine.gpu:
        return None
    size = binary(mib * 2**20)
    return (
        f'level=INFO source=sim msg="inference compute" id={SIM_GPU_UUID} library=cuda '
        f'name="ollama-farm simulated GPU" total="{size}" available="{size}"'
    )


def _serve(loaded: Loaded[SimSettings]) -> int:
    """Say which engine answers, then serve until interrupted."""
    settings = loaded.settings
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(settings)
    except EngineUnavailable as exc:
        sys.stderr.write(f"{SimSettings.prog}: error: --engine {settings.engine}: {exc}\n")
        return 2
    print(banner(app), flush=True)
    line = gpu_line(app)
    if line is not None:
        print(line, flush=True)
    # Blob uploads stream to disk chunk by chunk; every other body is read whole, so capped.
    guarded = BodyLimit(app, settings.client_max_body_size, unlimited=("/api/blobs/",))
    serve(
        door_config(
            guarded,
            settings,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            server_header=False,
            lifespan="on",
            # A stalled stream (fault injection) must not keep the process alive forever.
            graceful_shutdown_s=3,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: load `SimSettings` from flags and environment, then serve."""
    return run_main(SimSettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
