"""Local process backends: `ollama serve` (local), the simulator (sim) and its real engine (engine).

Both get the environment Ollama reads at start-up (OLLAMA_HOST, OLLAMA_NUM_PARALLEL, ...), so
the simulator is configured exactly as a real server would be; the simulator also gets the same
values as flags (its own settings, rendered by `to_argv`) and is labelled synthetic everywhere it
is reported; in engine mode it runs `--engine llamacpp` (real weights, CPU) and says so.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from farm.launch.backend import BackendRecord
from farm.launch.children import Child, service_env
from farm.launch.errors import BackendError
from farm.launch.models_dir import ModelsDir
from farm.launch.settings import UpSettings
from farm.settings import SettingsError, to_argv
from farm.settings.load import validate
from farm.sim.settings import SimSettings

log = logging.getLogger(__name__)

OLLAMA_BIN = "ollama"


def ollama_env(config: UpSettings, host: str, port: int) -> dict[str, str]:
    """The OLLAMA_* server variables the farm sets. Ollama has no GPU-layers variable: the
    layer count reaches it as the `num_gpu` option of the warm-up and of every request."""
    env = {
        "OLLAMA_HOST": f"{host}:{port}",
        "OLLAMA_NUM_PARALLEL": str(config.num_parallel),
        "OLLAMA_KEEP_ALIVE": config.keepalive,
        "OLLAMA_CONTEXT_LENGTH": str(config.ctx),
    }
    if config.max_queue is not None:
        env["OLLAMA_MAX_QUEUE"] = str(config.max_queue)
    if config.flash_attention:
        # "1", not "on": Ollama's bool parser treats any unparsable value as true anyway.
        env["OLLAMA_FLASH_ATTENTION"] = "1"
    return env


class ProcessBackend:
    """A backend running as our child process, listening on `host:port`."""

    def __init__(self, kind: str, name: str, child: Child, host: str, port: int) -> None:
        self.kind = kind
        self.name = name
        self._child = child
        self._url = f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """http://host:port of the server."""
        return self._url

    def start(self) -> None:
        """Spawn the process."""
        try:
            self._child.start()
        except OSError as exc:
            raise BackendError(f"cannot run {self._child.argv[0]}: {exc.strerror}") from exc

    def alive(self) -> bool:
        """True while the process runs."""
        return self._child.alive()

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of its log file."""
        return self._child.log_tail(lines)

    def stop(self) -> None:
        """Terminate it (SIGTERM, then SIGKILL)."""
        self._child.stop()

    def record(self) -> BackendRecord:
        """pid + start time + log path."""
        return BackendRecord(
            kind=self.kind,
            url=self._url,
            name=self.name,
            pid=self._child.pid,
            pid_create_time=self._child.create_time(),
            log_path=str(self._child.log_path),
        )


def local_backend(
    config: UpSettings,
    base_env: Mapping[str, str],
    index: int,
    port: int,
    models: ModelsDir,
    log_dir: Path,
    gpu_uuid: str | None = None,
) -> ProcessBackend:
    """`ollama serve` on back_host:port with the models store in OLLAMA_MODELS, pinned to one
    GPU (`CUDA_VISIBLE_DEVICES`, by UUID) for `--gpus per-gpu`."""
    env = dict(base_env)
    env.update(ollama_env(config, config.back_host, port))
    env["OLLAMA_MODELS"] = str(models.store)
    if gpu_uuid is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu_uuid
    name = f"{config.name}-{index}"
    child = Child([OLLAMA_BIN, "serve"], env, log_dir / f"{name}.log")
    return ProcessBackend("process", name, child, config.back_host, port)


def sim_settings(config: UpSettings, port: int) -> SimSettings:
    """The simulator configured as the farm configures `ollama serve` (`ollama_env`)."""
    values: dict[str, object] = {
        "host": config.back_host,
        "port": port,
        "num_parallel": config.num_parallel,
        "keep_alive": config.keepalive,  # the simulator reads Go durations as Ollama does
        "context_length": config.ctx,
    }
    if config.mode == "engine":
        values["engine"] = "llamacpp"
    if config.max_queue is not None:
        values["max_queue"] = config.max_queue
    if config.profile is not None:
        values["profile"] = config.profile.resolve()  # the child may run elsewhere
    try:
        return validate(SimSettings, values)
    except SettingsError as exc:
        raise BackendError(f"the simulator cannot take the farm's settings: {exc}") from exc


def sim_backend(
    config: UpSettings, base_env: Mapping[str, str], index: int, port: int, log_dir: Path
) -> ProcessBackend:
    """The simulator (`python -m farm.sim`) with the same settings, as flags and variables."""
    settings = sim_settings(config, port)
    env = service_env(base_env, settings)
    env.update(ollama_env(config, config.back_host, port))
    argv = [sys.executable, "-m", "farm.sim", *to_argv(settings)]
    kind = "engine" if config.mode == "engine" else "sim"
    name = f"{config.name}-{kind}-{index}"
    child = Child(argv, env, log_dir / f"{name}.log")
    return ProcessBackend(kind, name, child, config.back_host, port)
