"""`invoke up --mode docker` against real Docker engines (private dockerd, stand-in image).

What a user sees: containers created with the right spec (inspected on the engine), the
engine's own GPU errors as one line naming `invoke gpu-setup`, streams split across replicas
and moved off a killed one, two engines behind one proxy, and `down` leaving nothing behind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import ollama
import psutil
import pytest

from farm.common.childserver import poll_until
from farm.launch.engines import engine_gpus, translate
from farm.launch.errors import GpuUnavailable

from ..conftest import Farm, free_ports, free_run, port_is_free
from . import image
from .conftest import TWO_GPUS, Engine, with_gpus
from .gate import StartGate

# The engines listen on unix sockets, which pytest-socket's --allow-hosts cannot name (a path
# is not a host); everything these tests reach is still this machine.
pytestmark = pytest.mark.enable_socket

MODEL = "gemma3:4b"
GPU_ERROR = 'could not select device driver "" with capabilities: [[gpu]]'
DEFAULT_NETWORKS = {"bridge", "host", "none"}


def _up(
    farm: Farm, *extra: str, ports: list[int] | None = None
) -> tuple[int, int, subprocess.CompletedProcess[str]]:
    # Room for two backends on consecutive ports, whatever the test starts.
    front, back = ports or free_run(2)
    done = farm.invoke(
        "up", "--mode", "docker", "--model", MODEL, "--image", image.TAG, "--detach",
        "--front-port", str(front), "--back-port", str(back), "--host", "127.0.0.1",
        "--models-dir", str(farm.cwd / "ollama-home"), *extra, timeout=120,
    )  # fmt: skip
    return front, back, done


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


def _assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    [line] = _error_lines(done.stderr)
    for needle in needles:
        assert needle in line, line


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _health(front: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{front}/_health", trust_env=False, timeout=5).json()


def test_up_runs_the_image_with_its_spec_and_down_leaves_nothing(
    docker_farm: Farm, engine_a: Engine
) -> None:
    front, back, done = _up(docker_farm, "--cpu", "--num-parallel", "3", "--keepalive", "2h")
    assert done.returncode == 0, done.stderr
    assert f"pull {MODEL}: success" in done.stderr  # the stand-in's own /api/pull stream
    [c] = engine_a.ours()
    attrs = c.attrs
    assert c.name == "ollama-farm" and c.status == "running"
    assert attrs["HostConfig"]["Init"] is True
    assert not attrs["HostConfig"]["DeviceRequests"]  # --cpu
    env = set(attrs["Config"]["Env"])
    assert {"OLLAMA_NUM_PARALLEL=3", "OLLAMA_KEEP_ALIVE=2h", "OLLAMA_HOST=0.0.0.0:11434"} <= env
    [mount] = attrs["Mounts"]
    assert (mount["Source"], mount["Destination"]) == (
        str(docker_farm.cwd / "ollama-home"),
        "/root/.ollama",
    )
    binding = attrs["HostConfig"]["PortBindings"]["11434/tcp"]
    assert binding == [{"HostIp": "127.0.0.1", "HostPort": str(back)}]
    # The simulator inside wrote its store through the mount: the models dir is shared.
    assert (docker_farm.cwd / "ollama-home" / "models" / "manifests").is_dir()

    with ollama.Client(host=f"http://127.0.0.1:{front}", trust_env=False) as client:
        chunks = list(
            client.generate(model=MODEL, prompt="hi", stream=True, options={"num_predict": 5})
        )
    assert chunks[-1].done and "".join(c.response for c in chunks)

    logs = docker_farm.invoke("logs", "--no-follow")
    assert 'msg="inference compute"' in logs.stdout and "SYNTHETIC" in logs.stdout
    status = docker_farm.invoke("status")
    assert status.returncode == 0, status.stdout
    assert f"host: {engine_a.url} (1 backend)" in status.stdout
    assert f"backend 1: container http://127.0.0.1:{back} [cpu]" in status.stdout

    proxy_pid = int(docker_farm.state()["proxy_pid"])  # type: ignore[call-overload]
    down = docker_farm.invoke("down")
    assert down.returncode == 0 and "stopped container ollama-farm" in down.stdout
    assert engine_a.ours() == []
    assert {n.name for n in engine_a.client.networks.list()} == DEFAULT_NETWORKS
    assert _gone(proxy_pid)
    assert port_is_free(back) and port_is_free(front)


def test_per_gpu_pins_each_container_to_its_uuid_and_the_gpu_error_is_one_line(
    docker_farm: Farm, engine_a: Engine, tmp_path: Path
) -> None:
    with_gpus(docker_farm, TWO_GPUS)
    with StartGate(engine_a.daemon.socket, tmp_path / "gate.sock") as gate:
        docker_farm.env["DOCKER_HOST"] = gate.url
        _, back, done = _up(docker_farm, "--gpus", "per-gpu")
    _assert_one_line_error(done, GPU_ERROR, "invoke gpu-setup", "--cpu")
    requests = {
        doc["Name"].lstrip("/"): doc["HostConfig"]["DeviceRequests"] for doc in gate.inspected
    }
    assert requests == {
        f"ollama-farm-{i + 1}": [
            {
                "Driver": "",
                "Count": 0,
                "DeviceIDs": [gpu["uuid"]],
                "Capabilities": [["gpu"]],
                "Options": {},
            }
        ]
        for i, gpu in enumerate(TWO_GPUS)
    }
    ports = {
        doc["Name"].lstrip("/"): doc["HostConfig"]["PortBindings"]["11434/tcp"][0]["HostPort"]
        for doc in gate.inspected
    }
    assert ports == {"ollama-farm-1": str(back), "ollama-farm-2": str(back + 1)}
    assert engine_a.ours() == []  # the `created` containers the GPU error left are gone
    assert not docker_farm.state_file.exists()


def test_gpus_list_picks_gpus_by_index_or_uuid_and_refuses_unknown_ones(
    docker_farm: Farm, engine_a: Engine, tmp_path: Path
) -> None:
    with_gpus(docker_farm, TWO_GPUS)
    with StartGate(engine_a.daemon.socket, tmp_path / "gate.sock") as gate:
        docker_farm.env["DOCKER_HOST"] = gate.url
        _, _, done = _up(docker_farm, "--gpus", f"{TWO_GPUS[1]['uuid']}")
    _assert_one_line_error(done, GPU_ERROR)
    [doc] = gate.inspected
    assert doc["HostConfig"]["DeviceRequests"][0]["DeviceIDs"] == [TWO_GPUS[1]["uuid"]]
    _, _, done = _up(docker_farm, "--gpus", "0,5")
    _assert_one_line_error(done, "--gpus 0,5: no GPU 5", TWO_GPUS[0]["uuid"])
    assert engine_a.ours() == []


def test_per_gpu_without_a_driver_is_one_line_naming_gpu_setup(docker_farm: Farm) -> None:
    _, _, done = _up(docker_farm, "--gpus", "per-gpu")
    _assert_one_line_error(done, "NVML", "--cpu")


def test_unknown_nvidia_runtime_from_the_engine_is_one_line(engine_a: Engine) -> None:
    with pytest.raises(docker.errors.APIError) as caught:
        engine_a.client.containers.create(image.TAG, runtime="nvidia", name="runtime-probe")
    assert "Unknown runtime specified nvidia" in str(caught.value.explanation)
    error = translate(caught.value, "ollama-farm", 11434, engine_a.url)
    assert isinstance(error, GpuUnavailable)
    assert "invoke gpu-setup" in str(error) and "\n" not in str(error)
    assert engine_a.ours() == []  # refused at create: nothing was left


def test_listing_an_engines_gpus_without_the_toolkit_is_one_line_and_leaves_nothing(
    engine_a: Engine,
) -> None:
    # How a remote engine's GPUs are found: a short-lived container given every GPU.
    with pytest.raises(GpuUnavailable) as caught:
        engine_gpus(engine_a.client, image.TAG, engine_a.url, "ollama-farm")
    assert GPU_ERROR in str(caught.value) and "invoke gpu-setup" in str(caught.value)
    assert engine_a.ours() == []


def test_a_busy_back_port_is_refused_before_any_container(
    docker_farm: Farm, engine_a: Engine
) -> None:
    front, back = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", back))
        holder.listen()
        _, _, done = _up(docker_farm, "--cpu", ports=[front, back])
    _assert_one_line_error(done, f"--back-port {back}: port already in use")
    assert engine_a.ours() == []


def test_a_stale_farm_container_is_replaced_and_a_foreign_one_is_left_alone(
    docker_farm: Farm, engine_a: Engine
) -> None:
    stale = engine_a.client.containers.create(
        image.TAG, name="ollama-farm", labels={"ollama-farm": "ollama-farm"}
    )
    _, _, done = _up(docker_farm, "--cpu")
    assert done.returncode == 0, done.stderr
    [now] = engine_a.ours()
    assert now.name == "ollama-farm" and now.id != stale.id
    assert docker_farm.invoke("down").returncode == 0

    foreign = engine_a.client.containers.create(image.TAG, name="ollama-farm")
    _, _, done = _up(docker_farm, "--cpu")
    _assert_one_line_error(done, "was not started by the farm", "docker rm -f ollama-farm")
    assert [c.id for c in engine_a.ours()] == [foreign.id]


def _stream(front: int, out: list[str], began: threading.Event) -> None:
    body = {"model": MODEL, "prompt": "count", "options": {"num_predict": 150}}
    with httpx.stream(
        "POST", f"http://127.0.0.1:{front}/api/generate", json=body, trust_env=False, timeout=60
    ) as resp:
        for line in resp.iter_lines():
            if line.strip():
                out.append(line)
                began.set()
    began.set()


def test_replicas_split_streams_and_a_killed_one_loses_only_its_own(
    docker_farm: Farm, engine_a: Engine
) -> None:
    front, back, done = _up(docker_farm, "--replicas", "2", "--cpu", "--num-parallel", "4")
    assert done.returncode == 0, done.stderr
    assert {c.name for c in engine_a.ours()} == {"ollama-farm-1", "ollama-farm-2"}
    lines: list[list[str]] = [[] for _ in range(8)]
    began = [threading.Event() for _ in range(8)]
    threads = [threading.Thread(target=_stream, args=(front, lines[i], began[i])) for i in range(8)]
    for t in threads:
        t.start()
    for e in began:
        assert e.wait(20)
    backends = _health(front)["backends"]
    assert [b["in_flight"] for b in backends] == [4, 4]
    assert [b["label"] for b in backends] == [
        f"{engine_a.url} cpu",
        f"{engine_a.url} cpu",
    ]

    engine_a.client.containers.get("ollama-farm-1").kill()
    for t in threads:
        t.join(30)
    last = [json.loads(stream[-1]) for stream in lines]
    assert sorted("error" in x for x in last) == [False] * 4 + [True] * 4
    assert all(x.get("done") for x in last if "error" not in x)

    for _ in range(4):  # new requests go to the one left
        r = httpx.post(
            f"http://127.0.0.1:{front}/api/generate",
            json={"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 3}},
            trust_env=False,
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["done"], r.text
    poll_until(lambda: not _health(front)["backends"][0]["reachable"], 20, "backend 1 seen down")
    status = docker_farm.invoke("status")
    assert f"backend 1: container http://127.0.0.1:{back} [cpu] unreachable" in status.stdout

    proxy_pid = int(docker_farm.state()["proxy_pid"])  # type: ignore[call-overload]
    assert docker_farm.invoke("down").returncode == 0
    assert engine_a.ours() == []
    assert {n.name for n in engine_a.client.networks.list()} == DEFAULT_NETWORKS
    assert _gone(proxy_pid)


def test_two_engines_serve_through_one_proxy_and_status_lists_both(
    docker_farm: Farm, engine_a: Engine, engine_b: Engine
) -> None:
    # A is this host's engine (unix socket); B answers on a TCP address that is not loopback,
    # as another machine's engine would, so its backend is published on that address.
    docker_farm.env.pop("DOCKER_HOST")
    remote = engine_b.tcp_url
    try:
        front, back, done = _up(
            docker_farm, "--cpu", "--docker-host", engine_a.url, "--docker-host", remote
        )
        assert done.returncode == 0, done.stderr
        assert [c.name for c in engine_a.ours()] == ["ollama-farm-1"]
        [on_b] = engine_b.ours()
        assert on_b.name == "ollama-farm-2"
        address = remote.removeprefix("tcp://").rsplit(":", 1)[0]
        published = on_b.attrs["HostConfig"]["PortBindings"]["11434/tcp"]
        assert published == [{"HostIp": address, "HostPort": str(back + 1)}]
        # B cannot see this host's models dir: its backends share a volume of its own.
        [mount] = on_b.attrs["Mounts"]
        assert (mount["Type"], mount["Name"]) == ("volume", "ollama-farm-models")
        with ollama.Client(host=f"http://127.0.0.1:{front}", trust_env=False) as client:
            for _ in range(2):
                assert client.generate(model=MODEL, prompt="hi", options={"num_predict": 3}).done
        status = docker_farm.invoke("status")
        assert status.returncode == 0, status.stdout
        assert f"host: {engine_a.url} (1 backend)" in status.stdout
        assert f"host: {remote} (1 backend)" in status.stdout
        assert f"backend 2: container http://{address}:{back + 1} [cpu]" in status.stdout
        labels = [b["label"] for b in _health(front)["backends"]]
        assert labels == [f"{engine_a.url} cpu", f"{remote} cpu"]
        assert docker_farm.invoke("down").returncode == 0
        assert engine_a.ours() == [] and engine_b.ours() == []
        assert port_is_free(back)
    finally:
        for c in engine_b.ours():
            c.remove(force=True)


def test_per_gpu_on_a_remote_engine_asks_it_for_its_gpus_and_says_what_to_fix(
    docker_farm: Farm, engine_b: Engine
) -> None:
    docker_farm.env.pop("DOCKER_HOST")
    _, _, done = _up(docker_farm, "--gpus", "per-gpu", "--docker-host", engine_b.tcp_url)
    _assert_one_line_error(done, engine_b.tcp_url, GPU_ERROR, "invoke gpu-setup")
    assert engine_b.ours() == []  # the GPU-listing container is gone too
