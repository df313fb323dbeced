"""Placement: which backends the farm starts, on which Docker engine, pinned to which GPU.

`--gpus all` gives each host `--replicas` backends that all see every GPU; `per-gpu` one backend
per GPU of each host; a LIST those GPUs only. Back ports count up from `--back-port` across all
backends, so two engines on one machine (or a test's two daemons) never publish the same port.
A backend on a remote engine (tcp://, ssh://) publishes its port on the engine's own address,
the one the proxy reaches it at; a local one on `--back-host` (loopback by default).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from farm.launch.errors import PreflightError
from farm.launch.gpus import GpuSlot, choose
from farm.launch.settings import UpSettings

LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Placement:
    """One backend to start: its number, name, port, engine and GPU (None: all, or CPU)."""

    index: int
    name: str
    port: int
    docker_host: str | None
    gpu: GpuSlot | None
    publish_host: str
    cpu: bool = False

    @property
    def url(self) -> str:
        """Where the proxy reaches it."""
        host = "127.0.0.1" if self.publish_host in ("0.0.0.0", "") else self.publish_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def label(self) -> str:
        """What /_health and status show: `<host> gpu0 GPU-...`, `<host> all-gpus`, `<host>
        cpu`, where host is the engine as given (`localhost` for the default one)."""
        return f"{self.docker_host or 'localhost'} {self.gpu_label}"

    @property
    def gpu_label(self) -> str:
        """The GPU it holds: one by index, UUID and name, all of them, or none (`--cpu`)."""
        if self.cpu:
            return "cpu"
        return self.gpu.label if self.gpu is not None else "all-gpus"

    @property
    def store_key(self) -> str:
        """Backends with the same key share one models store: pull once, warm on each."""
        if self.docker_host is not None and is_remote(self.docker_host):
            return self.docker_host
        return LOCAL


def engine_address(docker_host: str | None) -> str | None:
    """The host part of a tcp:// or ssh:// engine URL; None for a local socket."""
    if docker_host is None or docker_host.startswith("unix://"):
        return None
    return urlsplit(docker_host).hostname


def is_remote(docker_host: str | None) -> bool:
    """True for an engine on another machine (anything but a unix socket or loopback)."""
    address = engine_address(docker_host)
    if address is None or address == "localhost":
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True


def _publish_host(config: UpSettings, docker_host: str | None) -> str:
    address = engine_address(docker_host)
    if not is_remote(docker_host) or address is None:
        return config.back_host
    # Docker publishes on an IP, not a name: the engine's own address, not every interface.
    try:
        return str(socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)[0][4][0])
    except OSError as exc:
        raise PreflightError(f"--docker-host {docker_host}: cannot resolve {address}") from exc


def place(
    config: UpSettings,
    hosts: tuple[str | None, ...],
    gpus_of: Callable[[str | None], tuple[GpuSlot, ...]],
) -> tuple[Placement, ...]:
    """Every backend of the farm, in start order; `gpus_of(host)` lists a host's GPUs and is
    asked only when `--gpus` is not `all`."""
    wanted: list[tuple[str | None, GpuSlot | None]] = []
    for host in hosts:
        if config.gpus == "all":
            wanted += [(host, None)] * config.replicas
        else:
            where = host or "this host"
            wanted += [(host, gpu) for gpu in choose(config.gpus, gpus_of(host), where)]
    if config.back_port + len(wanted) - 1 > 65535:
        raise PreflightError(f"--back-port {config.back_port}: too high for {len(wanted)} backends")
    out = []
    for i, (host, gpu) in enumerate(wanted, 1):
        name = config.name if len(wanted) == 1 else f"{config.name}-{i}"
        port = config.back_port + i - 1
        publish = _publish_host(config, host)
        out.append(Placement(i, name, port, host, gpu, publish, cpu=config.cpu))
    return tuple(out)
