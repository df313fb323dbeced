"""Placement: which backends `up --gpus ... --docker-host ...` starts, where, on which GPU."""

from __future__ import annotations

import pytest

from farm.launch.engines import parse_gpu_csv
from farm.launch.errors import PreflightError
from farm.launch.gpus import GpuSlot, choose
from farm.launch.placement import LOCAL, is_remote, place
from farm.launch.settings import UpSettings
from farm.settings import SettingsError, load

GIB = 1 << 30
GPUS = (
    GpuSlot(0, "GPU-aaaa", "NVIDIA L4", 24 * GIB, 23 * GIB),
    GpuSlot(1, "GPU-bbbb", "NVIDIA L4", 24 * GIB, 20 * GIB),
)


def _config(*argv: str) -> UpSettings:
    return load(UpSettings, ["--model", "gemma3:4b", *argv], {}).settings


def _no_gpus_asked(host: str | None) -> tuple[GpuSlot, ...]:
    raise AssertionError("--gpus all must not list GPUs")


def test_all_gives_each_host_its_replicas_on_consecutive_ports_seeing_every_gpu() -> None:
    config = _config("--replicas", "2", "--back-port", "20000")
    hosts = ("unix:///a.sock", "unix:///b.sock")
    placed = place(config, hosts, _no_gpus_asked)
    assert [(p.name, p.port, p.docker_host, p.gpu) for p in placed] == [
        ("ollama-farm-1", 20000, "unix:///a.sock", None),
        ("ollama-farm-2", 20001, "unix:///a.sock", None),
        ("ollama-farm-3", 20002, "unix:///b.sock", None),
        ("ollama-farm-4", 20003, "unix:///b.sock", None),
    ]
    assert placed[0].label == "unix:///a.sock all-gpus"
    assert {p.store_key for p in placed} == {LOCAL}  # local sockets share the host's models dir


def test_a_single_backend_keeps_the_plain_name_and_cpu_says_so() -> None:
    [only] = place(_config("--cpu"), (None,), _no_gpus_asked)
    assert (only.name, only.url, only.label) == (
        "ollama-farm",
        "http://127.0.0.1:11434",
        "localhost cpu",
    )


def test_per_gpu_pins_one_backend_to_each_gpu_of_each_host() -> None:
    config = _config("--gpus", "per-gpu", "--back-port", "30000")
    placed = place(config, ("unix:///a.sock", "unix:///b.sock"), lambda host: GPUS)
    assert [(p.port, p.docker_host, p.gpu.uuid if p.gpu else None) for p in placed] == [
        (30000, "unix:///a.sock", "GPU-aaaa"),
        (30001, "unix:///a.sock", "GPU-bbbb"),
        (30002, "unix:///b.sock", "GPU-aaaa"),
        (30003, "unix:///b.sock", "GPU-bbbb"),
    ]
    assert placed[1].label == "unix:///a.sock gpu1 GPU-bbbb NVIDIA L4"


@pytest.mark.parametrize(
    ("wanted", "uuids"),
    [
        ("1", ["GPU-bbbb"]),
        ("GPU-bbbb,0", ["GPU-bbbb", "GPU-aaaa"]),
        ("per-gpu", ["GPU-aaaa", "GPU-bbbb"]),
    ],
    ids=["index", "uuid-then-index-in-given-order", "per-gpu"],
)
def test_a_gpu_list_picks_by_index_or_uuid(wanted: str, uuids: list[str]) -> None:
    assert [g.uuid for g in choose(wanted, GPUS, "box")] == uuids


def test_an_unknown_gpu_or_a_host_without_gpus_is_one_line_naming_the_fix() -> None:
    with pytest.raises(PreflightError, match=r"--gpus 0,3: no GPU 3 on box; it has 0 \(GPU-aaaa\)"):
        choose("0,3", GPUS, "box")
    with pytest.raises(PreflightError, match="no NVIDIA GPU found on box; run `invoke gpu-setup`"):
        choose("per-gpu", (), "box")


def test_a_remote_engine_publishes_on_its_own_address_and_has_its_own_store() -> None:
    config = _config("--back-port", "40000")
    [local, remote] = place(config, ("unix:///a.sock", "tcp://192.0.2.7:2375"), _no_gpus_asked)
    assert (local.publish_host, local.url) == ("127.0.0.1", "http://127.0.0.1:40000")
    assert (remote.publish_host, remote.url) == ("192.0.2.7", "http://192.0.2.7:40001")
    assert (local.store_key, remote.store_key) == (LOCAL, "tcp://192.0.2.7:2375")


@pytest.mark.parametrize(
    ("url", "remote"),
    [
        (None, False),
        ("unix:///var/run/docker.sock", False),
        ("tcp://127.0.0.1:2375", False),
        ("tcp://localhost:2375", False),
        ("tcp://10.1.2.3:2376", True),
        ("ssh://ops@gpu-box", True),
    ],
)
def test_which_engines_are_remote(url: str | None, remote: bool) -> None:
    assert is_remote(url) is remote


def test_too_many_backends_for_the_port_range_are_refused() -> None:
    config = _config("--gpus", "per-gpu", "--back-port", "65535")
    with pytest.raises(PreflightError, match="--back-port 65535: too high for 2 backends"):
        place(config, (None,), lambda host: GPUS)


def test_nvidia_smi_csv_from_a_remote_engine_becomes_gpu_slots() -> None:
    text = "0, GPU-aaaa, 23034, 22000, NVIDIA L4\n1, GPU-bbbb, 81559, 80000, NVIDIA H100, PCIe\n"
    assert parse_gpu_csv(text, "box") == [
        GpuSlot(0, "GPU-aaaa", "NVIDIA L4", 23034 << 20, 22000 << 20),
        GpuSlot(1, "GPU-bbbb", "NVIDIA H100, PCIe", 81559 << 20, 80000 << 20),
    ]
    with pytest.raises(PreflightError, match="nvidia-smi on box printed"):
        parse_gpu_csv("No devices were found", "box")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus", "some"], "use all, per-gpu, or GPU indices/UUIDs"),
        (["--gpus", "0,0"], "a GPU is named twice"),
        (["--gpus", "per-gpu", "--cpu"], "drop one"),
        (["--gpus", "per-gpu", "--replicas", "2"], "drop --replicas"),
        (["--docker-host", "docker.example:2375"], "expected unix:///path, tcp://host:port"),
        (["--docker-host", "unix:///a", "--docker-host", "unix:///a"], "an engine is given twice"),
        (["--backend-url", "http://h:1", "--gpus", "0"], "--backend-url fronts running servers"),
    ],
    ids=["bad-word", "twice", "with-cpu", "with-replicas", "no-scheme", "engine-twice", "external"],
)
def test_bad_gpu_and_engine_flags_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        _config(*argv)


def test_docker_host_is_repeatable_and_read_from_docker_host() -> None:
    argv = ["--docker-host", "unix:///a.sock", "--docker-host", "ssh://u@b"]
    assert _config(*argv).docker_host == ("unix:///a.sock", "ssh://u@b")
    env = {"DOCKER_HOST": "tcp://10.0.0.2:2375"}
    assert load(UpSettings, ["--model", "m"], env).settings.docker_host == ("tcp://10.0.0.2:2375",)
