"""Backends that are local processes: `ollama serve` (local mode) and the simulator (sim mode).

Both get the environment Ollama reads at start-up (OLLAMA_HOST, OLLAMA_NUM_PARALLEL, ...), so
the simulator is configured exactly as a real server would be; sim mode adds its own flags and is
labelled synthetic everywhere it is reported.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from farm.config import FarmConfig
from farm.errors import BackendError
from farm.launch.backend import BackendRecord
from farm.launch.children import Child
from farm.launch.models_dir import ModelsDir

log = logging.getLogger(__name__)


def ollama_env(config: FarmConfig, host: str, port: int) -> dict[str, str]:
    """The OLLAMA_* server variables the farm sets (Ollama has no GPU-layers variable: §6.1)."""
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
    config: FarmConfig, index: int, port: int, models: ModelsDir, log_dir: Path
) -> ProcessBackend:
    """`ollama serve` on back_host:port with the models store in OLLAMA_MODELS."""
    env = dict(config.base_env)
    env.update(ollama_env(config, config.back_host, port))
    env["OLLAMA_MODELS"] = str(models.store)
    name = f"{config.name}-{index}"
    child = Child([config.ollama_bin, "serve"], env, log_dir / f"{name}.log")
    return ProcessBackend("process", name, child, config.back_host, port)


def sim_backend(config: FarmConfig, index: int, port: int, log_dir: Path) -> ProcessBackend:
    """The simulator (`python -m farm.sim`) with the same settings, as flags and variables."""
    env = dict(config.base_env)
    env.update(ollama_env(config, config.back_host, port))
    argv = [
        sys.executable,
        "-m",
        "farm.sim",
        "--host",
        config.back_host,
        "--port",
        str(port),
        "--num-parallel",
        str(config.num_parallel),
        "--keep-alive",
        config.keepalive,
        "--context-length",
        str(config.ctx),
    ]
    if config.max_queue is not None:
        argv += ["--max-queue", str(config.max_queue)]
    name = f"{config.name}-sim-{index}"
    child = Child(argv, env, log_dir / f"{name}.log")
    return ProcessBackend("sim", name, child, config.back_host, port)
