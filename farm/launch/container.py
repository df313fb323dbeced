"""The Docker backend: the ollama/ollama image run through the docker SDK (never the CLI).

Start = pull the image if missing (with progress), remove a stale container of the same name,
then create+start with all GPUs (a device request, i.e. `--gpus all`), the OLLAMA_* variables,
the models dir bind-mounted and the back port published on `back_host` (loopback by default).
Docker errors are translated into one-line farm errors; the NVIDIA "could not select device
driver" case points at `invoke gpu-setup` and `--cpu`. A start that fails after create leaves a
`created` container holding the name, so it is always removed on the error path.
"""

from __future__ import annotations

import logging
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from farm.launch.backend import BackendRecord
from farm.launch.errors import BackendError, GpuUnavailable, PortInUse, PreflightError, PullError
from farm.launch.models_dir import ModelsDir
from farm.launch.process import ollama_env
from farm.launch.progress import PullProgress
from farm.launch.settings import UpSettings

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
CONTAINER_PORT = "11434/tcp"
LABEL = "ollama-farm"


def connect(docker_host: str | None, timeout_s: float = 60.0) -> docker.DockerClient:
    """A client for DOCKER_HOST (or the default socket); PreflightError if no engine answers."""
    try:
        client = docker.DockerClient(base_url=docker_host or DEFAULT_SOCKET, timeout=int(timeout_s))
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise PreflightError(
            f"no Docker engine answers at {docker_host or DEFAULT_SOCKET} ({type(exc).__name__})"
        ) from exc
    return client


def engine_answers(docker_host: str | None) -> bool:
    """True when a Docker engine answers a ping (auto mode's first choice)."""
    try:
        connect(docker_host, timeout_s=3.0).close()
    except PreflightError:
        return False
    return True


def ensure_image(client: docker.DockerClient, image: str) -> None:
    """Pull `image` with a progress bar unless it is present; PullError on failure."""
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise PullError(f"cannot inspect image {image}: {exc.explanation or exc}") from exc
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    log.info("pulling image %s", image)
    try:
        with PullProgress(image) as bars:
            for event in client.api.pull(repo, tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise PullError(f"pulling image {image} failed: {event['error']}")
                detail = event.get("progressDetail") or {}
                if event.get("id") and detail.get("total"):
                    bars.update(event["id"], event["id"], detail.get("current", 0), detail["total"])
    except docker.errors.APIError as exc:
        raise PullError(f"pulling image {image} failed: {exc.explanation or exc}") from exc


def _translate_start_error(exc: docker.errors.APIError, name: str, port: int) -> Exception:
    text = str(exc.explanation or exc)
    if "could not select device driver" in text:
        return GpuUnavailable(
            f"Docker cannot give the container a GPU ({text.strip()}): run `invoke gpu-setup` "
            "to install the NVIDIA Container Toolkit, or add --cpu to run without a GPU"
        )
    if "port is already allocated" in text or "address already in use" in text:
        return PortInUse(f"--back-port {port}: port already in use ({text.strip()})")
    if exc.status_code == 409:
        return BackendError(f"container name {name!r} is taken ({text.strip()}); use --name")
    return BackendError(f"Docker could not start {name}: {text.strip()}")


class ContainerBackend:
    """One ollama/ollama container."""

    def __init__(self, config: UpSettings, index: int, port: int, models: ModelsDir) -> None:
        self._config = config
        self.name = config.name if config.replicas == 1 else f"{config.name}-{index}"
        self._port = port
        self._models = models
        self._client: docker.DockerClient | None = None
        self._container: Any = None

    @property
    def url(self) -> str:
        """The published port on the host."""
        host = "127.0.0.1" if self._config.back_host == "0.0.0.0" else self._config.back_host
        return f"http://{host}:{self._port}"

    def spec(self) -> dict[str, Any]:
        """Keyword arguments for `containers.run` (kept separate so tests can read them)."""
        env = ollama_env(self._config, "0.0.0.0", 11434)
        kwargs: dict[str, Any] = {
            "name": self.name,
            "detach": True,
            "environment": env,
            "ports": {CONTAINER_PORT: (self._config.back_host, self._port)},
            "volumes": {
                str(self._models.path): {"bind": self._models.container_target, "mode": "rw"}
            },
            "labels": {LABEL: self._config.name},
        }
        if not self._config.cpu:
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            ]
        return kwargs

    def _remove_named(self, client: docker.DockerClient) -> None:
        try:
            client.containers.get(self.name).remove(force=True)
            log.info("removed stale container %s", self.name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            msg = f"cannot remove stale container {self.name}: {exc.explanation}"
            raise BackendError(msg) from exc

    def start(self) -> None:
        """Pull, remove stale, create+start; errors are one-line farm errors."""
        client = self._client = connect(self._config.docker_host)
        ensure_image(client, self._config.image)
        self._remove_named(client)
        try:
            self._container = client.containers.run(self._config.image, **self.spec())
        except docker.errors.APIError as exc:
            try:
                self._remove_named(client)
            except BackendError:
                log.warning("could not remove the half-created container %s", self.name)
            raise _translate_start_error(exc, self.name, self._port) from exc
        log.info("container %s started (%s)", self.name, self._container.short_id)
        gpu = "GPU disabled (--cpu)" if self._config.cpu else "GPU enabled (--gpus all)"
        log.info(
            "%s, layers=%d, num_parallel=%d",
            gpu,
            self._config.pin_num_gpu,
            self._config.num_parallel,
        )

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
        """Container id + engine address."""
        return BackendRecord(
            kind="container",
            url=self.url,
            name=self.name,
            container_id=self._container.id if self._container is not None else None,
            docker_host=self._config.docker_host,
        )


def stop_container(client: docker.DockerClient, container_id: str) -> bool:
    """Stop and remove a container by id; False if it was already gone."""
    try:
        container = client.containers.get(container_id)
        container.stop(timeout=10)
        container.remove(force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot stop container {container_id[:12]}: {exc.explanation}") from exc
    return True
