"""Docker mode through the real docker SDK against a fake Engine API on a unix socket."""

from __future__ import annotations

import pytest

from .conftest import Farm, free_ports, port_is_free
from .fake_engine import FakeEngine

IMAGE = "ollama/ollama:latest"


def _up(farm: Farm, *extra: str, mode: str = "docker") -> tuple[int, int, object]:
    front, back = free_ports(2)
    done = farm.run(
        "up", "--mode", mode, "--model", "gemma3:4b", "--no-pull", "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back), "--models-dir",
        str(farm.cwd / "ollama-home"), "--detach", *extra,
    )  # fmt: skip
    return front, back, done


def test_docker_up_sends_the_gpu_container_spec_and_down_removes_it(
    farm: Farm, engine: FakeEngine
) -> None:
    front, back, done = _up(farm, "--num-parallel", "4", "--keepalive", "2h")
    assert done.returncode == 0, done.stderr
    assert ("POST", "/images/create") in engine.state.calls  # the image was missing: pulled
    assert len(engine.state.created) == 1
    spec = engine.state.created[0]
    host = spec["HostConfig"]
    assert spec["name"] == "ollama-farm" and spec["Image"] == IMAGE
    # `--gpus all`: count -1 with the gpu capability, and no device ids (moby refuses both).
    [request] = host["DeviceRequests"]
    assert (request["Driver"], request["Count"], request["Capabilities"]) == ("", -1, [["gpu"]])
    assert not request["DeviceIDs"]
    assert sorted(spec["Env"]) == [
        "OLLAMA_CONTEXT_LENGTH=4096",
        "OLLAMA_HOST=0.0.0.0:11434",
        "OLLAMA_KEEP_ALIVE=2h",
        "OLLAMA_NUM_PARALLEL=4",
    ]
    assert host["Binds"] == [f"{farm.cwd / 'ollama-home'}:/root/.ollama:rw"]
    assert host["PortBindings"] == {"11434/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(back)}]}
    assert "OLLAMA_NUM_GPU_LAYERS" not in str(spec)
    assert "GPU enabled (--gpus all), layers=-1, num_parallel=4" in done.stderr

    status = farm.run("status")
    assert status.returncode == 0, status.stdout
    assert f"backend 1: container http://127.0.0.1:{back}" in status.stdout
    assert "loaded: gemma3:4b" in status.stdout and "slots: 4 per backend" in status.stdout
    logs = farm.run("logs", "--no-follow")
    assert "SYNTHETIC" in logs.stdout

    down = farm.run("down")
    assert down.returncode == 0 and "stopped container ollama-farm" in down.stdout
    assert engine.state.containers == {}
    assert port_is_free(back) and port_is_free(front)


def test_auto_prefers_docker_and_replaces_a_stale_container(farm: Farm, engine: FakeEngine) -> None:
    farm.install_ollama()  # present, but an answering engine wins
    stale = engine.add_container("ollama-farm")
    engine.state.images.add(IMAGE)
    _, _, done = _up(farm, mode="auto")
    assert done.returncode == 0, done.stderr
    assert "mode auto: a Docker engine answers; using docker" in done.stderr
    assert farm.ollama_calls() == []
    assert ("DELETE", f"/containers/{stale.id}") in engine.state.calls
    assert ("POST", "/images/create") not in engine.state.calls  # present: not pulled again
    assert [c.name for c in engine.state.containers.values()] == ["ollama-farm"]


def test_cpu_flag_sends_no_device_request(farm: Farm, engine: FakeEngine) -> None:
    engine.state.gpu_missing = True
    _, _, done = _up(farm, "--cpu")
    assert done.returncode == 0, done.stderr
    assert (
        "DeviceRequests" not in engine.state.created[0]["HostConfig"]
        or not (engine.state.created[0]["HostConfig"]["DeviceRequests"])
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda e: setattr(e.state, "fail_pull", "Get https://registry-1.docker.io: timeout"),
            "pulling image ollama/ollama:latest failed: Get https://registry-1.docker.io",
        ),
        (
            lambda e: setattr(e.state, "gpu_missing", True),
            "could not select device driver",
        ),
        (
            lambda e: e.add_container("ollama-farm") and e.state.undeletable.add("ollama-farm"),
            "cannot remove stale container ollama-farm",
        ),
        (
            lambda e: e.state.taken_names.add("ollama-farm"),
            "container name 'ollama-farm' is taken (Conflict. The container name",
        ),
    ],
    ids=["image-pull-failure", "nvidia-driver-missing", "stale-undeletable", "name-conflict"],
)
def test_engine_errors_are_one_line_and_leave_no_container(
    farm: Farm, engine: FakeEngine, breakage, expected: str
) -> None:
    breakage(engine)
    before = set(engine.state.containers)
    front, back, done = _up(farm)
    assert done.returncode == 1
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("python -m farm up: error:")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert set(engine.state.containers) == before
    assert not farm.state_file.exists()
    assert port_is_free(front)


def test_gpu_error_points_at_gpu_setup_and_cpu(farm: Farm, engine: FakeEngine) -> None:
    engine.state.gpu_missing = True
    _, _, done = _up(farm)
    assert "invoke gpu-setup" in done.stderr and "--cpu" in done.stderr
    assert engine.state.containers == {}  # the created-but-unstartable one was removed


def test_port_allocated_in_the_engine_is_a_port_error(farm: Farm, engine: FakeEngine) -> None:
    front, back = free_ports(2)
    engine.state.allocated_ports.add(back)
    done = farm.run(
        "up", "--mode", "docker", "--model", "gemma3:4b", "--no-pull",
        "--front-port", str(front), "--back-port", str(back), "--models-dir",
        str(farm.cwd / "m"), "--detach",
    )  # fmt: skip
    assert done.returncode == 1
    assert f"--back-port {back}: port already in use" in done.stderr
    assert "port is already allocated" in done.stderr
    assert engine.state.containers == {}
