"""gpu-setup in a sandbox: first run, idempotent rerun, refusals and --check."""

from __future__ import annotations

import json

import pytest

from farm.gpu.ensure import ensure
from farm.gpu.errors import SetupRefused
from farm.gpu.probe import run_command
from farm.gpu.settings import GpuSetupSettings

from .conftest import KEY_BYTES, Host, write_os_release

KEYRING = "usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
SOURCE_LIST = "etc/apt/sources.list.d/nvidia-container-toolkit.list"
CHANGING = (
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "nvidia-container-toolkit"],
    ["systemctl", "restart", "docker"],
)


def _changing_calls(host: Host) -> list[list[str]]:
    calls = host.calls()
    return [c for c in calls if c in CHANGING or c[:3] == ["nvidia-ctk", "runtime", "configure"]]


def test_first_run_installs_configures_restarts_and_verifies(host: Host) -> None:
    done = host.run()
    assert done.returncode == 0, done.stderr
    calls = host.calls()
    assert ["apt-get", "install", "-y", "nvidia-container-toolkit"] in calls
    configure = [c for c in calls if c[:2] == ["nvidia-ctk", "runtime"]]
    assert configure and configure[0][2:4] == ["configure", "--runtime=docker"]
    assert "--set-as-default" in configure[0]
    assert calls.index(["systemctl", "restart", "docker"]) > calls.index(configure[0])
    assert ["docker", "run", "--rm", "--gpus", "all"] == calls[-1][:5]
    assert (host.root / KEYRING).read_bytes() == KEY_BYTES
    lst = (host.root / SOURCE_LIST).read_text()
    assert f"deb [signed-by=/{KEYRING}] https://nvidia.github.io/" in lst
    daemon = json.loads((host.root / "etc/docker/daemon.json").read_text())
    assert daemon["default-runtime"] == "nvidia"
    assert daemon["log-driver"] == "json-file"
    assert daemon["features"] == {"containerd-snapshotter": True}
    assert "changed  installed nvidia-container-toolkit" in done.stdout
    assert "ok       gpu-container" in done.stdout


def test_second_run_changes_nothing_and_says_so(host: Host) -> None:
    assert host.run().returncode == 0
    before = {p: (host.root / p).read_bytes() for p in (KEYRING, SOURCE_LIST)}
    daemon_before = (host.root / "etc/docker/daemon.json").read_bytes()
    host.clear_calls()
    again = host.run()
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    assert _changing_calls(host) == []
    assert {p: (host.root / p).read_bytes() for p in before} == before
    assert (host.root / "etc/docker/daemon.json").read_bytes() == daemon_before


def test_features_dropped_by_nvidia_ctk_are_restored(host: Host) -> None:
    host.flag("ctk-drops-features")
    assert host.run().returncode == 0
    daemon = json.loads((host.root / "etc/docker/daemon.json").read_text())
    assert daemon["features"] == {"containerd-snapshotter": True}
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    host.clear_calls()
    assert "no changes" in host.run().stdout


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda h: h.nvml({"error": "DRIVER_NOT_LOADED"}),
            "needs a working NVIDIA driver; the NVIDIA driver is installed but not loaded",
        ),
        (
            lambda h: write_os_release(h.root, "debian", "12", "Debian GNU/Linux 12 (bookworm)"),
            "supports Ubuntu 24.04 (noble) only; this host runs Debian GNU/Linux 12",
        ),
        (lambda h: write_os_release(h.root, "ubuntu", "22.04", "Ubuntu 22.04"), "Ubuntu 24.04"),
        (lambda h: h.flag("docker-stopped"), "docker service is not running"),
        (
            lambda h: (
                (h.root / "etc/apt/sources.list.d").mkdir(parents=True)
                or (h.root / "etc/apt/sources.list.d/libnvidia-container.list").write_text(
                    "deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n"
                )
            ),
            "libnvidia-container.list also lists NVIDIA's repository",
        ),
    ],
    ids=["missing-driver", "non-ubuntu", "ubuntu-22.04", "docker-stopped", "conflicting-list"],
)
def test_refusal_is_one_clear_line_and_changes_nothing(host: Host, setup, expected: str) -> None:
    setup(host)
    daemon_before = (host.root / "etc/docker/daemon.json").read_bytes()
    done = host.run()
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert _changing_calls(host) == []
    assert not (host.root / KEYRING).exists()
    assert (host.root / "etc/docker/daemon.json").read_bytes() == daemon_before


def test_check_reports_every_item_and_changes_nothing(host: Host) -> None:
    done = host.run("--check")
    assert done.returncode == 1
    states = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}
    assert states["os"] == "ok" and states["driver"] == "ok" and states["docker"] == "ok"
    assert states["keyring"] == "missing" and states["toolkit"] == "missing"
    assert states["daemon-json"] == "missing" and states["gpu-container"] == "wrong"
    assert _changing_calls(host) == []
    assert not (host.root / KEYRING).exists()

    assert host.run().returncode == 0
    ready = host.run("--check")
    assert ready.returncode == 0, ready.stdout
    assert all(line.startswith("ok ") for line in ready.stdout.splitlines())


def test_check_on_a_broken_host_still_reports_every_item(host: Host) -> None:
    host.nvml({"error": "DRIVER_NOT_LOADED"})
    host.flag("docker-stopped")
    done = host.run("--check")
    assert done.returncode == 1
    states = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}
    assert states["driver"] == "wrong" and states["docker-running"] == "missing"
    assert states["gpu-container"] == "missing" and len(states) == 11
    assert _changing_calls(host) == []


def test_not_root_is_refused_before_any_probe(host: Host) -> None:
    config = GpuSetupSettings(root=host.root, nvidia_repo=host.env["FARM_NVIDIA_REPO"])
    with pytest.raises(SetupRefused, match="must run as root"):
        ensure(config, run_command, euid=1000)
    assert host.calls() == []


def test_unreachable_nvidia_repo_is_one_line_and_writes_nothing(host: Host) -> None:
    host.env["FARM_NVIDIA_REPO"] = "http://127.0.0.1:9"  # discard port: nothing listens
    done = host.run()
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot fetch NVIDIA's apt repository" in done.stderr
    assert not (host.root / KEYRING).exists() and _changing_calls(host) == []
