"""The GPU setup procedure (the seed's docker_ensure.sh): check every item, fix what's missing.

`check()` only looks. `ensure()` refuses up front on hosts it cannot fix (not root, not Ubuntu
24.04, no driver, no Docker) and otherwise installs NVIDIA's repo and toolkit, configures Docker
through `nvidia-ctk`, restarts Docker only when something changed, and proves the result by
running a CUDA container with `--gpus all`. A second run finds everything in place and changes
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from farm.gpu import apt_repo, daemon_json, probe
from farm.gpu.errors import SetupError, SetupRefused
from farm.gpu.probe import Item, Runner
from farm.gpu.settings import GpuSetupSettings

log = logging.getLogger(__name__)

TOOLKIT_PACKAGE = "nvidia-container-toolkit"


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What `ensure()` changed (empty on a rerun) and the final state of every item."""

    changes: tuple[str, ...]
    items: tuple[Item, ...]


def check(config: GpuSetupSettings, run: Runner, euid: int) -> list[Item]:
    """Every item's state, changing nothing. Docker-dependent probes run only if Docker runs."""
    items = [
        probe.check_root(euid),
        probe.check_os(config.root),
        probe.check_driver(),
        probe.check_docker_installed(run),
        probe.check_docker_running(run),
        apt_repo.check_keyring(config.root),
        apt_repo.check_source_list(config.root),
        probe.check_toolkit(run),
        daemon_json.check(config.root),
    ]
    if items[3].ok and items[4].ok:
        items.append(probe.check_docker_runtime(run))
        items.append(probe.check_gpu_container(run, config.cuda_image))
    else:
        items.append(Item("docker-runtime", "missing", "Docker is not running"))
        items.append(Item("gpu-container", "missing", "Docker is not running"))
    return items


def _refuse_unfixable(config: GpuSetupSettings, run: Runner, euid: int) -> None:
    """Stop before any change on a host this procedure cannot fix, saying what to do."""
    if euid != 0:
        raise SetupRefused(
            "gpu-setup must run as root (it installs packages and edits /etc): "
            'sudo "$(command -v invoke)" gpu-setup'
        )
    os_item = probe.check_os(config.root)
    if not os_item.ok:
        raise SetupRefused(
            f"gpu-setup supports Ubuntu 24.04 (noble) only; this host runs {os_item.detail}. "
            "Install the NVIDIA Container Toolkit by NVIDIA's guide for your distribution"
        )
    driver = probe.check_driver()
    if not driver.ok:
        raise SetupRefused(f"gpu-setup needs a working NVIDIA driver; {driver.detail}")
    if not probe.check_docker_installed(run).ok:
        raise SetupRefused(
            "Docker is not installed: sudo apt-get install -y docker.io (or Docker CE), then re-run"
        )
    running = probe.check_docker_running(run)
    if not running.ok:
        raise SetupRefused(
            f"the docker service is not running ({running.detail}): "
            "sudo systemctl enable --now docker, then re-run"
        )
    others = apt_repo.conflicting_lists(config.root)
    if others:
        raise SetupRefused(
            f"{others[0]} also lists NVIDIA's repository with its own key; apt-get update would "
            "fail (Conflicting values set for option Signed-By). Remove it and re-run"
        )


def _install_toolkit(config: GpuSetupSettings, run: Runner, changes: list[str]) -> None:
    """Write keyring and list when needed, then apt-get install the toolkit if absent."""
    root = config.root
    repo_ok = apt_repo.check_keyring(root).ok and apt_repo.check_source_list(root).ok
    toolkit_ok = probe.check_toolkit(run).ok
    if repo_ok and toolkit_ok:
        return
    if not repo_ok:
        files = apt_repo.fetch(config.nvidia_repo)
        if apt_repo.write_if_changed(apt_repo.under(root, apt_repo.KEYRING), files.keyring):
            changes.append(f"wrote {apt_repo.KEYRING}")
        list_bytes = files.source_list.encode("utf-8")
        if apt_repo.write_if_changed(apt_repo.under(root, apt_repo.SOURCE_LIST), list_bytes):
            changes.append(f"wrote {apt_repo.SOURCE_LIST}")
    if toolkit_ok:
        return
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", TOOLKIT_PACKAGE]):
        res = run(argv, 1800.0)
        if res.rc != 0:
            tail = res.text.splitlines()[-1] if res.text else f"rc {res.rc}"
            raise SetupError(f"{' '.join(argv)} failed: {tail}")
    if not probe.check_toolkit(run).ok:
        raise SetupError(f"{TOOLKIT_PACKAGE} installed but nvidia-ctk does not run")
    changes.append(f"installed {TOOLKIT_PACKAGE}")


def ensure(config: GpuSetupSettings, run: Runner, euid: int) -> SetupReport:
    """Bring the host to the GPU-ready state; idempotent. Raises SetupRefused/SetupError."""
    _refuse_unfixable(config, run, euid)
    changes: list[str] = []
    _install_toolkit(config, run, changes)
    if daemon_json.configure(config.root, run):
        changes.append(f"configured {daemon_json.DAEMON_JSON} (nvidia default runtime)")
    # dockerd registers its GPU device driver only at start, and reads daemon.json only then.
    if changes or not probe.check_docker_runtime(run).ok:
        log.warning("restarting docker: running containers stop unless live-restore is set")
        res = run(["systemctl", "restart", "docker"], 300.0)
        if res.rc != 0:
            raise SetupError(f"systemctl restart docker failed: {res.text or f'rc {res.rc}'}")
        changes.append("restarted docker")
    items = tuple(check(config, run, euid))
    gpu = items[-1]
    if not gpu.ok:
        raise SetupError(
            f"a CUDA container still cannot see the GPU ({gpu.detail}); "
            "check `docker info` for the nvidia runtime and re-run gpu-setup"
        )
    return SetupReport(changes=tuple(changes), items=items)
