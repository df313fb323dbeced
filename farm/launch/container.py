"""The Docker backend: the ollama/ollama image run through the docker SDK (never the CLI).

Create = pull the image if missing (with progress), remove a stale container of the same name
(only one the farm started), then create the container with its GPUs as a device request
(every GPU, i.e. `--gpus all`, or one GPU by UUID for `--gpus per-gpu`), the OLLAMA_*
variables, the models store mounted and the back port published; start runs it. `up` creates
every container before it starts any, so the engines check all specs first. A local engine
mounts the host's models dir; a remote engine cannot see it, so its backends share a named
volume there. Containers run with an init process: the server is not PID 1, so `stop` takes a
fraction of a second, not the full timeout. A start that fails (the NVIDIA device error comes
only then) leaves a `created` container holding the name, so it is removed on every error path.
"""

from __future__ import annotations

import logging
from typing import Any

import docker
import docker.errors
import docker.types

from farm.launch.backend import BackendRecord
from farm.launch.engines import (
    GPU_LABEL,
    LABEL,
    connect,
    ensure_image,
    remove_named,
    stop_container,
    translate,
)
from farm.launch.errors import BackendError
from farm.launch.models_dir import ModelsDir
from farm.launch.placement import Placement, is_remote
from farm.launch.process import ollama_env
from farm.launch.settings import UpSettings

log = logging.getLogger(__name__)

CONTAINER_PORT = "11434/tcp"
# On a remote engine the models live in a volume of that engine, shared by its backends.
MODELS_VOLUME = "ollama-farm-models"


def device_requests(config: UpSettings, placement: Placement) -> list[docker.types.DeviceRequest]:
    """`--gpus all` (count -1), one GPU by UUID, or none for `--cpu`."""
    if config.cpu:
        return []
    if placement.gpu is not None:
        return [docker.types.DeviceRequest(device_ids=[placement.gpu.uuid], capabilities=[["gpu"]])]
    return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]


class ContainerBackend:
    """One ollama/ollama container on one engine."""

    def __init__(self, config: UpSettings, placement: Placement, models: ModelsDir | None) -> None:
        self._config = config
        self._placement = placement
        self.name = placement.name
        self._models = models
        self._client: docker.DockerClient | None = None
        self._container: Any = None

    @property
    def url(self) -> str:
        """The published port, at the address the proxy reaches it by."""
        return self._placement.url

    def _volumes(self) -> dict[str, dict[str, str]]:
        if self._models is None or is_remote(self._placement.docker_host):
            return {MODELS_VOLUME: {"bind": "/root/.ollama", "mode": "rw"}}
        return {str(self._models.path): {"bind": self._models.container_target, "mode": "rw"}}

    def spec(self) -> dict[str, Any]:
        """Keyword arguments for `containers.run` (kept separate so tests can read them)."""
        gpu = self._placement.gpu
        kwargs: dict[str, Any] = {
            "name": self.name,
            "detach": True,
            "init": True,
            "environment": ollama_env(self._config, "0.0.0.0", 11434),
            "ports": {CONTAINER_PORT: (self._placement.publish_host, self._placement.port)},
            "volumes": self._volumes(),
            "labels": {
                LABEL: self._config.name,
                GPU_LABEL: "none" if self._config.cpu else (gpu.uuid if gpu else "all"),
            },
        }
        requests = device_requests(self._config, self._placement)
        if requests:
            kwargs["device_requests"] = requests
        return kwargs

    def create(self) -> None:
        """Pull, remove a stale container, create (not start): the engine checks the spec now,
        so a farm of several containers is refused before any of them runs."""
        host = self._placement.docker_host
        client = self._client = connect(host)
        ensure_image(client, self._config.image)
        if remove_named(client, self.name):
            log.info("removed stale container %s", self.name)
        spec = {k: v for k, v in self.spec().items() if k != "detach"}
        try:
            self._container = client.containers.create(self._config.image, **spec)
        except docker.errors.APIError as exc:
            self._discard(client)
            raise translate(exc, self.name, self._placement.port, host) from exc

    def _discard(self, client: docker.DockerClient) -> None:
        """Remove what a failed create or start left (a `created` container holds the name)."""
        self._container = None
        try:
            remove_named(client, self.name)
        except BackendError:
            log.warning("could not remove the half-created container %s", self.name)

    def start(self) -> None:
        """Create (unless done) and start; errors are one-line farm errors."""
        if self._container is None or self._client is None:
            self.create()
        host = self._placement.docker_host
        try:
            self._container.start()
        except docker.errors.APIError as exc:
            self._discard(connect(host))
            raise translate(exc, self.name, self._placement.port, host) from exc
        log.info(
            "container %s started (%s) on %s",
            self.name,
            self._container.short_id,
            host or "the local engine",
        )
        log.info(
            "%s, layers=%d, num_parallel=%d",
            self._gpu_text(),
            self._config.pin_num_gpu,
            self._config.num_parallel,
        )

    def _gpu_text(self) -> str:
        if self._config.cpu:
            return "GPU disabled (--cpu)"
        gpu = self._placement.gpu
        return f"GPU pinned ({gpu.label})" if gpu else "GPU enabled (--gpus all)"

    def alive(self) -> bool:
        """True while the container is running."""
        if self._container is None:
            return False
        try:
            self._container.reload()
        except docker.errors.DockerException:
            return False
        return bool(self._container.status == "running")

    def log_tail(self, lines: int = 20) -> str:
        """The container's last log lines (Ollama logs to stderr, included)."""
        if self._container is None:
            return ""
        try:
            raw = self._container.logs(tail=lines)
        except docker.errors.DockerException:
            return ""
        return bytes(raw).decode("utf-8", errors="replace").strip()

    def stop(self) -> None:
        """Stop and remove the container."""
        if self._container is None or self._client is None:
            return
        stop_container(self._client, self._container.id)
        self._container = None

    def record(self) -> BackendRecord:
        """Container id, engine address and GPU."""
        return BackendRecord(
            kind="container",
            url=self.url,
            name=self.name,
            container_id=self._container.id if self._container is not None else None,
            docker_host=self._placement.docker_host,
            gpu=self._placement.gpu_label,
        )
