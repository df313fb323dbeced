"""Host probes for GPU setup: a command-runner seam and the typed result of each check.

Every probe runs a real command through `Runner` (PATH decides which binary answers, so tests
put recording stubs first on PATH), or asks NVML for the driver (`farm.gpu.inventory`), and
returns an `Item` with state ok / missing / wrong.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from farm.common.sizes import binary
from farm.gpu.errors import NoNvidiaDriver, NvmlUnavailable
from farm.gpu.inventory import read_inventory

log = logging.getLogger(__name__)

State = Literal["ok", "missing", "wrong"]


@dataclass(frozen=True, slots=True)
class Item:
    """One checked property of the host, e.g. `driver: ok (NVIDIA H100, 550.54)`."""

    name: str
    state: State
    detail: str

    @property
    def ok(self) -> bool:
        """True when the item needs no action."""
        return self.state == "ok"


@dataclass(frozen=True, slots=True)
class Result:
    """A finished command: exit status and its decoded output."""

    rc: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """stdout and stderr together, stripped (for messages)."""
        return (self.stdout + self.stderr).strip()


class Runner(Protocol):
    """Runs one command and returns its result; a missing executable gives rc 127."""

    def __call__(self, argv: Sequence[str], timeout_s: float = ...) -> Result: ...


def run_command(argv: Sequence[str], timeout_s: float = 600.0) -> Result:
    """The real runner: `subprocess.run` with captured text output."""
    log.debug("running %s", " ".join(argv))
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        return Result(127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Result(124, "", f"{argv[0]}: timed out after {timeout_s:.0f}s")
    return Result(done.returncode, done.stdout, done.stderr)


def os_release(root: Path) -> dict[str, str]:
    """Parse `<root>/etc/os-release` (KEY=value, optionally quoted); empty when missing."""
    path = root / "etc" / "os-release"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def check_os(root: Path) -> Item:
    """Ubuntu 24.04 (noble) is the only release whose NVIDIA repo layout we set up."""
    rel = os_release(root)
    pretty = rel.get("PRETTY_NAME") or rel.get("ID") or "unknown OS"
    if rel.get("ID") == "ubuntu" and rel.get("VERSION_ID") == "24.04":
        return Item("os", "ok", pretty)
    return Item("os", "wrong", f"{pretty} (needs Ubuntu 24.04)")


def check_root(euid: int) -> Item:
    """Setup writes /etc and installs packages, so it must run as root."""
    return Item("root", "ok" if euid == 0 else "missing", f"euid {euid}")


def check_driver() -> Item:
    """The host driver must work: NVML starts and lists at least one GPU (`read_inventory`)."""
    try:
        inventory = read_inventory()
    except NvmlUnavailable as exc:
        return Item("driver", "missing" if isinstance(exc, NoNvidiaDriver) else "wrong", str(exc))
    if not inventory.gpus:
        return Item("driver", "wrong", f"driver {inventory.driver_version} sees no GPU")
    gpus = "; ".join(
        f"{g.index}: {g.name} ({binary(g.free_bytes)} free of {binary(g.total_bytes)})"
        for g in inventory.gpus
    )
    versions = f"driver {inventory.driver_version}, CUDA {inventory.cuda_version}"
    return Item("driver", "ok", f"{gpus}; {versions}")


def check_docker_installed(run: Runner) -> Item:
    """The Docker CLI and engine package must be installed."""
    res = run(["docker", "--version"], 30.0)
    if res.rc == 0:
        return Item("docker", "ok", res.stdout.strip())
    return Item("docker", "missing", "docker not found")


def check_docker_running(run: Runner) -> Item:
    """The docker service must be active (systemd)."""
    res = run(["systemctl", "is-active", "docker"], 30.0)
    state = res.stdout.strip() or res.text or f"rc {res.rc}"
    return Item("docker-running", "ok" if res.rc == 0 else "missing", state)


def check_toolkit(run: Runner) -> Item:
    """`nvidia-ctk --version` answers once nvidia-container-toolkit is installed."""
    res = run(["nvidia-ctk", "--version"], 30.0)
    if res.rc == 0:
        first = res.stdout.strip().splitlines()
        return Item("toolkit", "ok", first[0] if first else "installed")
    return Item("toolkit", "missing", "nvidia-container-toolkit not installed")


def check_gpu_container(run: Runner, image: str) -> Item:
    """The end-to-end proof: a CUDA base container run with `--gpus all` sees the GPU."""
    res = run(["docker", "run", "--rm", "--gpus", "all", image, "nvidia-smi", "-L"], 900.0)
    if res.rc == 0:
        first = res.stdout.strip().splitlines()
        return Item("gpu-container", "ok", first[0] if first else image)
    lines = res.text.splitlines()
    return Item("gpu-container", "wrong", lines[-1] if lines else f"rc {res.rc}")


def check_docker_runtime(run: Runner) -> Item:
    """After a restart, `docker info` lists the `nvidia` runtime from daemon.json."""
    res = run(["docker", "info", "--format", "{{json .Runtimes}}"], 60.0)
    if res.rc != 0:
        return Item("docker-runtime", "missing", res.text.splitlines()[-1] if res.text else "")
    if '"nvidia"' in res.stdout:
        return Item("docker-runtime", "ok", "dockerd lists the nvidia runtime")
    return Item("docker-runtime", "missing", "dockerd does not list nvidia (restart docker)")
