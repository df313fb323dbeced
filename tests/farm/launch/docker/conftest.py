"""Real Docker engines for the launcher's tests: private `dockerd`s and the stand-in image.

The session starts its own daemons as root (one per stand-in host, each with its own socket,
data and exec roots and bridge) and stops them at the end, leaving the host as it found it.
Without `dockerd` it installs Debian's `docker.io` (root only); the tests are skipped only
where that cannot happen. Each daemon gets the stand-in image, imported from a tarball: no
registry is involved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ..conftest import Farm
from . import image
from .daemon import Dockerd

FAKE_NVML = Path(__file__).resolve().parents[1] / "fake_nvml"
TWO_GPUS = [
    {"uuid": "GPU-0b0e2c55-6f0a-4a3c-9d4e-6a1f00000000", "name": "NVIDIA H100 80GB HBM3",
     "total_mib": 81559},
    {"uuid": "GPU-0b0e2c55-6f0a-4a3c-9d4e-6a1f00000001", "name": "NVIDIA H100 80GB HBM3",
     "total_mib": 81559},
]  # fmt: skip


def _ensure_dockerd() -> None:
    if os.geteuid() != 0:
        why = "absent" if shutil.which("dockerd") is None else "present, but a private one"
        pytest.skip(f"dockerd is {why} needs root to start (apt-get install docker.io, as root)")
    # dockerd itself, and `ip` to give each test daemon a bridge of its own.
    missing = [
        pkg
        for tool, pkg in (("dockerd", "docker.io"), ("ip", "iproute2"))
        if not shutil.which(tool)
    ]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def _free_subnet(n: int) -> str:
    """A 172.29.x /24 (x from n) that no route of this host uses yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for x in range(n, 250, 7):
        if f"172.29.{x}." not in routes:
            return f"172.29.{x}"
    raise RuntimeError("no free 172.29.x.0/24 for a test bridge")


@dataclass
class Engine:
    """A running test daemon and a client for it."""

    daemon: Dockerd
    client: docker.DockerClient

    @property
    def url(self) -> str:
        return self.daemon.url

    @property
    def tcp_url(self) -> str:
        assert self.daemon.tcp_url, "this engine listens on its unix socket only"
        return self.daemon.tcp_url

    def ours(self) -> list[docker.models.containers.Container]:
        return self.client.containers.list(all=True)


@pytest.fixture(scope="session")
def standin_rootfs() -> bytes:
    _ensure_dockerd()
    return image.rootfs()


def _engine(rootfs: bytes, n: int, tcp: bool = False) -> Iterator[Engine]:
    bridge = f"farmtest{n}"
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
    # Not under pytest's basetemp: its rotation would try to delete a live daemon's mounts.
    root = Path(tempfile.mkdtemp(prefix=f"farm-dockerd{n}-"))
    daemon = Dockerd(root, bridge, _free_subnet(n), tcp=tcp)
    try:
        client = daemon.start()
        try:
            image.load(client, rootfs)
            yield Engine(daemon, client)
        finally:
            client.close()
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def engine_a(standin_rootfs: bytes) -> Iterator[Engine]:
    """The first stand-in host."""
    yield from _engine(standin_rootfs, 1)


@pytest.fixture(scope="session")
def engine_b(standin_rootfs: bytes) -> Iterator[Engine]:
    """The second stand-in host, also reachable as a remote engine (`tcp_url`)."""
    yield from _engine(standin_rootfs, 2, tcp=True)


@pytest.fixture
def docker_farm(farm: Farm, engine_a: Engine) -> Iterator[Farm]:
    """The launcher's sandbox pointed at engine A, with the stand-in image and no GPU on NVML;
    whatever a test leaves is taken down, and every container removed."""
    farm.env["DOCKER_HOST"] = engine_a.url
    farm.env["PYTHONPATH"] = str(FAKE_NVML)
    farm.env.pop("FAKE_NVML_GPUS", None)
    yield farm
    if farm.state_file.exists():
        farm.run("down", timeout=60)
    for c in engine_a.ours():
        c.remove(force=True)


def with_gpus(farm: Farm, gpus: list[dict[str, object]]) -> None:
    """Make NVML (the fake at the library boundary) report `gpus` to the launcher."""
    farm.env["FAKE_NVML_GPUS"] = json.dumps(gpus)
