"""Run the Ollama simulator: `python -m farm.sim [flags]` (a synthetic, model-free backend)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace

import uvicorn

from farm.sim.app import create_app
from farm.sim.config import SimConfig, parse_token_range
from farm.sim.durations import keep_alive_from_env
from farm.sim.errors import ConfigError

_FLAGS: tuple[tuple[str, Callable[[str], object], str], ...] = (
    ("host", str, "address to bind (OLLAMA_HOST; default 127.0.0.1)"),
    ("port", int, "port to bind (default from OLLAMA_HOST, else 11434)"),
    ("num-parallel", int, "parallel slots per model (OLLAMA_NUM_PARALLEL, default 1)"),
    ("max-queue", int, "scheduler queue capacity (OLLAMA_MAX_QUEUE, default 512)"),
    ("keep-alive", keep_alive_from_env, "idle time before unload (OLLAMA_KEEP_ALIVE, 5m)"),
    ("max-loaded-models", int, "runners resident at once (OLLAMA_MAX_LOADED_MODELS, 3)"),
    ("context-length", int, "default num_ctx (OLLAMA_CONTEXT_LENGTH, 4096)"),
    ("load-ms", float, "model load time in ms"),
    ("prefill-ms-per-token", float, "prompt evaluation time per prompt token, ms"),
    ("decode-ms", float, "decode step per token with one active slot, ms"),
    ("batch-slowdown", float, "step grows by this fraction per extra active slot"),
    ("jitter", float, "relative jitter on every duration, 0 <= j < 1"),
    ("seed", int, "seed for jitter and default token text"),
    ("fail-after-tokens", int, "fault: fail every stream with an error line after N tokens"),
    ("stall-after-tokens", int, "fault: stop producing tokens after N (until disconnect)"),
    ("pull-ms", float, "simulated download time of one pull, ms"),
    ("response-tokens", parse_token_range, "answer length N or LOW:HIGH (default 24:96)"),
    ("models-dir", str, "model store directory (default: a fresh temporary directory)"),
)
_RENAMED = {"keep-alive": "keep_alive_s"}


def build_config(argv: list[str], environ: dict[str, str]) -> SimConfig:
    """Parse flags on top of the OLLAMA_*/FARM_SIM_* environment."""
    parser = argparse.ArgumentParser(prog="python -m farm.sim", description=__doc__)
    for name, kind, help_text in _FLAGS:
        parser.add_argument(f"--{name}", type=kind, default=None, help=help_text)
    parser.add_argument("--origins", nargs="*", default=None, help="extra CORS origins")
    parser.add_argument("--empty-store", action="store_true", help="start with no models")
    parser.add_argument("--log-level", default="warning", help="logging level (default warning)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    base = SimConfig.from_env(environ)
    overrides: dict[str, object] = {}
    for name, _, _ in _FLAGS:
        value = getattr(args, name.replace("-", "_"))
        if value is not None:
            overrides[_RENAMED.get(name, name.replace("-", "_"))] = value
    if args.origins is not None:
        overrides["origins"] = tuple(args.origins)
    if args.empty_store:
        overrides["empty_store"] = True
    return replace(base, **overrides)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Entry point: build the config, say that this is synthetic, serve until interrupted."""
    try:
        config = build_config(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"farm.sim: {exc}\n")
        return 2
    print(
        f"ollama-farm simulator: SYNTHETIC Ollama backend (no model, no GPU) on "
        f"http://{config.host}:{config.port} (num_parallel={config.num_parallel})",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        server_header=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
