"""Pure parts of the launcher: model names, the proxy's settings, models-dir detection, pull and
warm-up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm.gpu import inventory
from farm.launch.errors import PreflightError, ProxyError, PullError, WarmupError
from farm.launch.model_name import validate_model_name
from farm.launch.model_pull import pull_model
from farm.launch.models_dir import detect, ensure_usable
from farm.launch.proxy_process import proxy_argv, proxy_settings
from farm.launch.settings import UpSettings
from farm.launch.status import gpu_memory
from farm.launch.warmup import keep_alive_value, warm_up
from farm.sim.child import SimServer

from .fake_nvml import pynvml as fake_pynvml


@pytest.mark.parametrize(
    "name",
    ["gemma3:4b", "llama3.2", "user/model:v1", "hf.co/org/repo:Q4_K_M", "reg.io:5000/ns/m:t"],
)
def test_valid_model_names_are_accepted(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "gemma3:", "gemma3:4b:x", "gemma3:4 b", "-lead:1b", "a/b/c/d:1", " gemma3"],
    ids=["empty", "empty-tag", "two-tags", "space", "leading-dash", "too-deep", "padded"],
)
def test_invalid_model_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        validate_model_name(name)


def test_proxy_is_started_with_option_pinning() -> None:
    config = UpSettings(model="gemma3:4b", ctx=8192, gpu_layers=20, num_parallel=6)
    argv = proxy_argv(proxy_settings(config, ["http://127.0.0.1:1", "http://127.0.0.1:2"]))
    assert argv[1:3] == ["-m", "farm.proxy"]
    assert argv[argv.index("--pin-num-ctx") + 1] == "8192"
    assert argv[argv.index("--pin-num-gpu") + 1] == "20"
    assert argv.count("--backend") == 2 and argv[argv.index("--num-parallel") + 1] == "6"
    cpu = UpSettings(model="gemma3:4b", cpu=True)
    cpu_argv = proxy_argv(proxy_settings(cpu, ["http://127.0.0.1:1"]))
    assert cpu_argv[cpu_argv.index("--pin-num-gpu") + 1] == "0"
    # -1 ("as many as fit") is Ollama's own default: left unpinned.
    assert "--pin-num-gpu" not in proxy_argv(proxy_settings(UpSettings(model="m"), ["http://h:1"]))


def test_a_backend_the_proxy_would_refuse_is_a_proxy_error() -> None:
    with pytest.raises(ProxyError, match="the proxy cannot take the farm's settings"):
        proxy_settings(UpSettings(model="gemma3:4b"), ["http://h:1", "http://h:1"])


@pytest.mark.parametrize(
    ("setup", "expected_path", "is_store", "reason"),
    [
        ("explicit", "given", False, "given by --models-dir"),
        ("env", "env-store", True, "OLLAMA_MODELS is set"),
        ("home", "home/.ollama", False, "found an existing store"),
        ("system", "sys/.ollama", False, "found an existing store"),
        ("nothing", "cwd/models", False, "no existing Ollama store found"),
    ],
    ids=["flag", "OLLAMA_MODELS", "home", "system", "fallback"],
)
def test_models_dir_detection_order(
    tmp_path: Path, setup: str, expected_path: str, is_store: bool, reason: str
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "sys/.ollama/models").mkdir(parents=True)
    if setup == "home":
        (tmp_path / "home/.ollama/models").mkdir(parents=True)
    system = (tmp_path / "sys/.ollama",) if setup in ("system", "home") else ()
    chosen = detect(
        tmp_path / "given" if setup == "explicit" else None,
        str(tmp_path / "env-store") if setup == "env" else None,
        tmp_path / "home",
        tmp_path / "cwd",
        system_homes=system,
    )
    assert chosen.path == tmp_path / expected_path
    assert chosen.is_store is is_store and reason in chosen.reason
    assert chosen.container_target == ("/root/.ollama/models" if is_store else "/root/.ollama")


def test_ensure_usable_creates_a_missing_dir_and_refuses_a_file(tmp_path: Path) -> None:
    models = detect(tmp_path / "new", None, None, tmp_path)
    ensure_usable(models)
    assert (tmp_path / "new").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(PreflightError, match="not a directory"):
        ensure_usable(detect(tmp_path / "file", None, None, tmp_path))


def test_keep_alive_numbers_travel_as_numbers() -> None:
    assert keep_alive_value("3600") == 3600 and keep_alive_value("-1") == -1
    assert keep_alive_value("1h") == "1h"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(env={"FARM_SIM_LOAD_MS": "20", "FARM_SIM_DECODE_MS": "1"}) as server:
        yield server


def test_pull_then_warm_up_reports_load_duration(sim: SimServer) -> None:
    pull_model(sim.url, "llama3.2:1b")
    result = warm_up(sim.url, "llama3.2:1b", "5m", 2048, -1)
    assert result.load_duration_ns > 0 and result.total_duration_ns >= result.load_duration_ns


def test_pull_of_an_unknown_model_reports_the_servers_reason(sim: SimServer) -> None:
    with pytest.raises(PullError, match="pull nosuch:1b: pull model manifest: file does not"):
        pull_model(sim.url, "nosuch:1b")


def test_warm_up_of_a_missing_model_suggests_pulling(sim: SimServer) -> None:
    with pytest.raises(WarmupError, match="drop --no-pull"):
        warm_up(sim.url, "qwen3:0.6b", "5m", 2048, -1)


def test_a_pull_stream_cut_before_success_is_a_failure() -> None:
    lines = [{"status": "pulling manifest"}, {"status": "pulling abc", "digest": "sha256:abc",
             "total": 100, "completed": 40}]  # fmt: skip
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with pytest.raises(PullError, match="ended before success"):
        pull_model("http://backend", "gemma3:4b", transport=transport)


def test_pull_from_an_unreachable_backend_is_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(PullError, match="connection to http://backend failed"):
        pull_model("http://backend", "gemma3:4b", transport=httpx.MockTransport(refuse))


def test_status_reads_gpu_memory_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    h100 = {"uuid": "GPU-a", "name": "NVIDIA H100 80GB HBM3", "total_mib": 81559}
    gpus = [{**h100, "used_mib": 5123}]
    monkeypatch.setattr(inventory, "pynvml", fake_pynvml)
    monkeypatch.setenv("FAKE_NVML_GPUS", json.dumps(gpus))
    assert gpu_memory() == ("0 NVIDIA H100 80GB HBM3: 5.0 GiB/79.6 GiB used",)
    monkeypatch.delenv("FAKE_NVML_GPUS")
    assert gpu_memory() == ()


def test_warm_up_pins_the_options_and_keep_alive_the_proxy_pins() -> None:
    seen: list[dict[str, object]] = []

    def backend(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"done": True, "load_duration": 7, "total_duration": 9})

    result = warm_up(
        "http://b", "gemma3:4b", "-1", 8192, 20, transport=httpx.MockTransport(backend)
    )
    assert (result.load_duration_ns, result.total_duration_ns) == (7, 9)
    assert seen[0]["keep_alive"] == -1 and seen[0]["stream"] is False
    assert seen[0]["options"] == {"num_ctx": 8192, "num_gpu": 20, "num_predict": 1}
