"""Docker engines as the launcher meets them: connect, pull an image, translate engine errors.

Everything goes through the docker SDK (never the CLI). Engine errors arrive as
`docker.errors.APIError` whose `explanation` is the engine's own text; the ones an operator can
act on become one-line farm errors here. The NVIDIA cases both point at `invoke gpu-setup`:
`could not select device driver "" with capabilities: [[gpu]]` (no toolkit; raised at *start*,
so `containers.run` leaves a `created` container behind) and `Unknown runtime specified nvidia`.
"""

from __future__ import annotations

import logging

import docker
import docker.errors
import docker.types
import requests

from farm.launch.errors import BackendError, GpuUnavailable, PortInUse, PreflightError, PullError
from farm.launch.gpus import GpuSlot
from farm.launch.progress import PullProgress

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Every container the farm starts carries this label (value: the farm's --name); a container
# of the same name without it is someone else's and is never removed.
LABEL = "ollama-farm"
GPU_LABEL = "ollama-farm.gpu"


def where(docker_host: str | None) -> str:
    """The engine's address as the operator gave it (or the default socket)."""
    return docker_host or DEFAULT_SOCKET


def connect(docker_host: str | None, timeout_s: float = 60.0) -> docker.DockerClient:
    """A client for the engine at `docker_host`; PreflightError if it does not answer."""
    try:
        client = docker.DockerClient(base_url=where(docker_host), timeout=int(timeout_s))
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise PreflightError(
            f"no Docker engine answers at {where(docker_host)} ({type(exc).__name__}); "
            "start it, or run `invoke gpu-setup` to install it"
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


def translate(exc: docker.errors.APIError, name: str, port: int, host: str | None) -> Exception:
    """The engine's refusal to create or start container `name` as one line."""
    text = " ".join(str(exc.explanation or exc).split())
    if "could not select device driver" in text:
        return GpuUnavailable(
            f"Docker at {where(host)} cannot give {name} a GPU ({text}): run `invoke gpu-setup` "
            "to install the NVIDIA Container Toolkit, or add --cpu to run without a GPU"
        )
    if "Unknown runtime specified nvidia" in text:
        return GpuUnavailable(
            f"Docker at {where(host)} has no NVIDIA runtime ({text}): run `invoke gpu-setup` "
            "to install and register the NVIDIA Container Toolkit, or add --cpu"
        )
    if "port is already allocated" in text or "address already in use" in text:
        return PortInUse(f"--back-port {port}: port already in use on {where(host)} ({text})")
    if exc.status_code == 409:
        return BackendError(f"container name {name!r} is taken ({text}); use --name")
    return BackendError(f"Docker at {where(host)} could not start {name}: {text}")


def remove_named(client: docker.DockerClient, name: str) -> bool:
    """Remove a container called `name` if the farm started it (True); False if there is none;
    BackendError if it is someone else's."""
    try:
        found = client.containers.get(name)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot inspect container {name}: {exc.explanation}") from exc
    labels = found.attrs.get("Config", {}).get("Labels") or {}
    if LABEL not in labels:
        raise BackendError(
            f"a container named {name!r} exists and was not started by the farm; "
            f"remove it (docker rm -f {name}) or choose another --name"
        )
    try:
        found.remove(force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot remove stale container {name}: {exc.explanation}") from exc
    return True


def stop_container(client: docker.DockerClient, container_id: str) -> bool:
    """Stop and remove a container by id; False if it was already gone."""
    try:
        container = client.containers.get(container_id)
        # Our containers run with an init process, so SIGTERM reaches the server at once.
        container.stop(timeout=10)
        container.remove(force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot stop container {container_id[:12]}: {exc.explanation}") from exc
    return True


# CSV with `noheader,nounits` is nvidia-smi's interface for scripts; an image that has no
# Python (ollama/ollama) has no NVML bindings to ask instead.
GPU_QUERY = (
    "--query-gpu=index,uuid,memory.total,memory.free,name",
    "--format=csv,noheader,nounits",
)


def engine_gpus(client: docker.DockerClient, image: str, host: str, farm: str) -> list[GpuSlot]:
    """The GPUs the engine at `host` can hand out, listed by `nvidia-smi` in a short-lived
    container of `image` (the NVIDIA toolkit mounts the tool into any container given a GPU)."""
    ensure_image(client, image)
    name = f"{farm}-gpu-probe"
    remove_named(client, name)
    try:
        out = client.containers.run(
            image,
            entrypoint="nvidia-smi",
            command=list(GPU_QUERY),
            name=name,
            labels={LABEL: farm},
            device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
            remove=True,
        )
    except docker.errors.ContainerError as exc:
        raise PreflightError(f"nvidia-smi failed on {host} ({exc.exit_status})") from exc
    except docker.errors.APIError as exc:
        remove_named(client, name)
        raise translate(exc, name, 0, host) from exc
    return parse_gpu_csv(bytes(out).decode("utf-8", errors="replace"), host)


def parse_gpu_csv(text: str, host: str) -> list[GpuSlot]:
    """`0, GPU-..., 81559, 80000, NVIDIA H100 80GB HBM3` lines (MiB) as GpuSlot records; the
    name comes last because it is the one field that could hold a comma."""
    gpus = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",", 4)]
        try:
            index, uuid, total, free, name = int(cells[0]), cells[1], cells[2], cells[3], cells[4]
            gpus.append(GpuSlot(index, uuid, name, int(total) << 20, int(free) << 20))
        except (ValueError, IndexError) as exc:
            raise PreflightError(f"nvidia-smi on {host} printed {line!r}") from exc
    return gpus
