"""The launcher's command line: the seed's `ollama_farm.py` flags, flag for flag, plus additions.

`python -m farm [up] --model M ...` starts a farm; `python -m farm down|status|logs` act on the
recorded one. Parse errors are one line (`farm: error: ...`, exit 2), never a usage dump.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from farm.config import DEFAULT_IMAGE, MODES
from farm.errors import ConfigError

VERBS = ("up", "down", "status", "logs")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become ConfigError (one line) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting: the entry point prints one line."""
        raise ConfigError(message)


def up_parser() -> argparse.ArgumentParser:
    """Flags of `up` (the seed's CLI)."""
    p = _Parser(prog="python -m farm up", description="Start one warm Ollama and the proxy.")
    p.add_argument("--model", required=True, help="MODEL[:tag], e.g. gemma3:4b")
    p.add_argument("--num-parallel", type=int, default=4, help="OLLAMA_NUM_PARALLEL (slots)")
    p.add_argument("--gpu-layers", type=int, default=-1, help="num_gpu; -1 = as many as fit")
    p.add_argument("--front-port", type=int, default=8080, help="proxy port clients use")
    p.add_argument("--back-port", type=int, default=11434, help="backend port (first replica)")
    p.add_argument("--host", default="0.0.0.0", help="proxy bind address")
    p.add_argument("--back-host", default="127.0.0.1", help="where the back port is published")
    p.add_argument("--mode", default="auto", choices=MODES, help="auto|docker|local|sim")
    p.add_argument("--models-dir", type=Path, help="model cache dir (auto-detected)")
    p.add_argument("--keepalive", default="1h", help="keep the model loaded this long")
    p.add_argument("--ctx", type=int, default=4096, help="num_ctx pinned for every request")
    p.add_argument("--no-pull", action="store_true", help="don't /api/pull the model")
    p.add_argument("--backend-url", action="append", help="use a running Ollama (repeatable)")
    p.add_argument("--replicas", type=int, default=1, help="N backends on consecutive ports")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="Docker image for docker mode")
    p.add_argument("--name", default="ollama-farm", help="container / process name prefix")
    p.add_argument("--detach", action="store_true", help="leave it running; `down` stops it")
    p.add_argument("--max-queue", type=int, help="OLLAMA_MAX_QUEUE")
    p.add_argument("--flash-attention", action="store_true", help="OLLAMA_FLASH_ATTENTION=1")
    p.add_argument("--cpu", action="store_true", help="no GPU request (num_gpu 0)")
    p.add_argument("--api-key", help="proxy API key (default: FARM_API_KEY)")
    return p


def up_flags(argv: Sequence[str]) -> dict[str, object]:
    """Parse `up` flags into FarmConfig keyword arguments."""
    ns = up_parser().parse_args(list(argv))
    flags = vars(ns)
    flags["pull"] = not flags.pop("no_pull")
    urls = flags.pop("backend_url")
    flags["backend_urls"] = tuple(urls) if urls else None
    return flags


def logs_parser() -> argparse.ArgumentParser:
    """Flags of `logs`."""
    p = _Parser(prog="python -m farm logs", description="Show or follow a backend's log.")
    p.add_argument("--no-follow", action="store_true", help="print and exit")
    p.add_argument("--tail", type=int, default=100, help="lines of history")
    p.add_argument("--replica", type=int, default=1, help="which backend (1-based)")
    return p


def split_verb(argv: Sequence[str]) -> tuple[str, list[str]]:
    """(`verb`, rest); no verb means `up`, as in the seed."""
    if argv and argv[0] in VERBS:
        return argv[0], list(argv[1:])
    return "up", list(argv)
