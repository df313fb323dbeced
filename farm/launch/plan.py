"""Pre-flight: resolve the mode, the models dir, the placements and ports before any start.

Everything that can be refused is refused here, so a bad flag or a busy port leaves nothing
half-started. `auto` picks Docker when an engine answers, else a local `ollama` binary, and
otherwise stops naming the three ways forward; it never falls back to the simulator. The
placements (which backend on which engine and GPU) are settled here too, asking each engine for
its GPUs only when `--gpus` picks them one by one.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from farm.launch import engines, models_dir, ports, state
from farm.launch.errors import PreflightError, StateError
from farm.launch.gpus import GpuSlot, local_gpus
from farm.launch.models_dir import ModelsDir
from farm.launch.placement import Placement, is_remote, place
from farm.launch.process import OLLAMA_BIN
from farm.launch.settings import UpSettings
from farm.sim.engines.llamacpp.listing import MODEL_NAME as ENGINE_MODEL
from farm.sim.engines.llamacpp.process import check_installed
from farm.sim.errors import EngineUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    """What `up` will do: the resolved mode, for docker/local the models dir, and every
    backend to start (none for external)."""

    mode: str  # docker | local | sim | engine | external
    models: ModelsDir | None
    placements: tuple[Placement, ...] = ()


def resolve_mode(config: UpSettings, path: str | None) -> str:
    """external for --backend-url; auto -> docker, else local (an `ollama` on `path`), else a
    clear refusal."""
    if config.backend_url:
        return "external"
    if config.mode != "auto":
        return config.mode
    if engines.engine_answers(config.docker_host[0] if config.docker_host else None):
        log.info("mode auto: a Docker engine answers; using docker")
        return "docker"
    if shutil.which(OLLAMA_BIN, path=path):
        log.info("mode auto: no Docker engine; using the local ollama binary")
        return "local"
    raise PreflightError(
        "no Docker engine and no ollama binary found: run `invoke gpu-setup` (Docker + NVIDIA), "
        "install Ollama (https://ollama.com/download), or try the stack with --mode sim"
    )


def _check_ports(config: UpSettings, placements: tuple[Placement, ...]) -> None:
    ports.ensure_free(config.host, config.front_port, "--front-port")
    for p in placements:
        if p.port == config.front_port:
            raise PreflightError(f"--front-port {p.port}: clashes with backend {p.name}'s port")
        # A remote engine's ports are its own: it reports a taken one when the container starts.
        if not is_remote(p.docker_host):
            ports.ensure_free(p.publish_host, p.port, "--back-port")


def hosts_of(config: UpSettings, mode: str) -> tuple[str | None, ...]:
    """The Docker engines backends start on (None: the local default); one local host else."""
    if mode == "docker" and config.docker_host:
        return config.docker_host
    return (None,)


def _gpus_of(config: UpSettings, mode: str) -> Callable[[str | None], tuple[GpuSlot, ...]]:
    def gpus_of(host: str | None) -> tuple[GpuSlot, ...]:
        if mode == "docker" and is_remote(host):
            client = engines.connect(host)
            return tuple(engines.engine_gpus(client, config.image, str(host), config.name))
        return local_gpus()

    return gpus_of


def placements(config: UpSettings, mode: str) -> tuple[Placement, ...]:
    """Every backend `up` starts in `mode` (none for external backends)."""
    if mode == "external":
        return ()
    return place(config, hosts_of(config, mode), _gpus_of(config, mode))


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
    planned = placements(config, mode)
    _check_ports(config, planned)
    models = None
    if mode in ("docker", "local") or config.models_dir is not None:
        home = Path(base_env["HOME"]) if base_env.get("HOME") else None
        models = models_dir.detect(config.models_dir, config.ollama_models, home, cwd)
        models_dir.ensure_usable(models)
        log.info("models dir: %s (%s)", models.path, models.reason)
    return Plan(mode=mode, models=models, placements=planned)
