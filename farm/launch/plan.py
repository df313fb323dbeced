"""Pre-flight: resolve the mode, the models dir and the ports before anything is started.

Everything that can be refused is refused here, so a bad flag or a busy port leaves nothing
half-started. `auto` picks Docker when an engine answers, else a local `ollama` binary, and
otherwise stops naming the three ways forward; it never falls back to the simulator.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from farm.launch import container, models_dir, ports, state
from farm.launch.errors import PreflightError, StateError
from farm.launch.models_dir import ModelsDir
from farm.launch.process import OLLAMA_BIN
from farm.launch.settings import UpSettings
from farm.sim.engines.llamacpp.listing import MODEL_NAME as ENGINE_MODEL
from farm.sim.engines.llamacpp.process import check_installed
from farm.sim.errors import EngineUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    """What `up` will do: the resolved mode and, for docker/local, the models dir."""

    mode: str  # docker | local | sim | engine | external
    models: ModelsDir | None


def resolve_mode(config: UpSettings, path: str | None) -> str:
    """external for --backend-url; auto -> docker, else local (an `ollama` on `path`), else a
    clear refusal."""
    if config.backend_url:
        return "external"
    if config.mode != "auto":
        return config.mode
    if container.engine_answers(config.docker_host):
        log.info("mode auto: a Docker engine answers; using docker")
        return "docker"
    if shutil.which(OLLAMA_BIN, path=path):
        log.info("mode auto: no Docker engine; using the local ollama binary")
        return "local"
    raise PreflightError(
        "no Docker engine and no ollama binary found: run `invoke gpu-setup` (Docker + NVIDIA), "
        "install Ollama (https://ollama.com/download), or try the stack with --mode sim"
    )


def _check_ports(config: UpSettings, mode: str) -> None:
    ports.ensure_free(config.host, config.front_port, "--front-port")
    if mode in ("docker", "local", "sim", "engine"):
        for port in config.back_ports:
            ports.ensure_free(config.back_host, port, "--back-port")


def _refuse_live_farm(state_dir: Path) -> None:
    current = state.load(state_dir)
    if current is not None and current.anything_alive():
        raise StateError(
            f"a farm is already running (see {state.path_of(state_dir)}); run `invoke down` first"
        )


def _check_engine(config: UpSettings) -> None:
    """`--mode engine` serves the engine's one real model, and needs Node and its packages."""
    if config.model.lower() != ENGINE_MODEL:
        raise PreflightError(
            f"--mode engine serves {ENGINE_MODEL} (Gemma 3 270M base on llama.cpp): "
            f"pass --model {ENGINE_MODEL}"
        )
    try:
        check_installed()
    except EngineUnavailable as exc:
        raise PreflightError(f"--mode engine: {exc}") from exc


def preflight(config: UpSettings, base_env: Mapping[str, str], cwd: Path) -> Plan:
    """Validate the host for `config`, with the launcher's environment `base_env` (PATH finds
    `ollama`, HOME its models); raises a FarmError naming the first problem."""
    _refuse_live_farm(config.state_dir)
    path = base_env.get("PATH")
    mode = resolve_mode(config, path)
    if mode == "local" and not shutil.which(OLLAMA_BIN, path=path):
        raise PreflightError(
            "--mode local: no `ollama` binary on PATH; install Ollama or use --mode docker/sim"
        )
    if mode == "engine":
        _check_engine(config)
    _check_ports(config, mode)
    models = None
    if mode in ("docker", "local") or config.models_dir is not None:
        home = Path(base_env["HOME"]) if base_env.get("HOME") else None
        models = models_dir.detect(config.models_dir, config.ollama_models, home, cwd)
        models_dir.ensure_usable(models)
        log.info("models dir: %s (%s)", models.path, models.reason)
    return Plan(mode=mode, models=models)
