"""Will it fit? The memory estimate, the refusal with its numbers, and the CPU-spill warning.

The model shapes come from the simulator's `/api/show` (real GGUF values of the models it
imitates); GPUs from a fake NVML at pynvml's boundary, or from the simulator's `--vram-mib`,
which it logs as Ollama logs its GPU and honours in `/api/ps`. The end-to-end tests run
`python -m farm up --mode sim` as a user would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ollama
import pytest

from farm.launch.backend import BackendRecord
from farm.launch.errors import DoesNotFit
from farm.launch.fit import GpuBudget, budget_from_log, check_fit, estimate
from farm.launch.gpus import GpuSlot
from farm.launch.placement import Placement
from farm.launch.settings import UpSettings
from farm.launch.shape import ModelShape, read_shape
from farm.launch.spill import LoadedModel, spill_line
from farm.launch.vram import check_before_load
from farm.sim.child import SimServer

from ..gpu.nvml_site import fake_nvml
from .conftest import Farm, free_ports, port_is_free

GIB, MIB = 2**30, 2**20
# gemma3:4b as the simulator serves it: about its /api/tags size, 34 layers, 4 KV heads of
# 256 + 256, every sixth layer global (5), the other 29 keeping a 1024-token window.
GEMMA_SIZE = 3_338_793_405
GEMMA = ModelShape("gemma3:4b", GEMMA_SIZE, 34, 4, 256, 256, 131072, 1024, 29)


def gemma_kv(ctx: int) -> int:
    """One slot's cache, f16: 2 bytes x 4 heads x (256 + 256) per token and layer."""
    return 2 * 4 * 512 * (5 * ctx + 29 * min(ctx, 1024))


RESERVE = 512 * MIB
A10G_LINE = (
    'time=2025-02-26T21:01:23.251Z level=INFO source=types.go:131 msg="inference compute" '
    "id=GPU-dd1f9e61-27e0-16ad-dd71-766641270fd6 library=cuda variant=v12 compute=8.6 "
    'driver=12.2 name="NVIDIA A10G" total="22.0 GiB" available="21.7 GiB"'
)
CPU_LINE = (
    'level=INFO msg="inference compute" id=cpu library=cpu total="31.3 GiB" available="28.0 GiB"'
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(env={"FARM_SIM_LOAD_MS": "10", "FARM_SIM_PULL_MS": "10"}) as server:
        yield server


def test_shapes_read_from_show_are_the_models_gguf_values(sim: SimServer) -> None:
    with ollama.Client(host=sim.url) as client:
        listed = {m.model: m.size for m in client.list().models}
    # The weights are what /api/tags lists for the model; the rest is its GGUF shape.
    assert read_shape(sim.url, "gemma3:4b") == replace(GEMMA, weights_bytes=listed["gemma3:4b"])
    assert GEMMA.kv_bytes(32768) == gemma_kv(32768)
    # The window matters: all 34 layers global would take 4.4 times as much at 32k.
    assert 2 * 4 * 512 * 34 * 32768 > 4.3 * GEMMA.kv_bytes(32768)
    with ollama.Client(host=sim.url) as client:
        client.pull("llama3.2:1b")
        client.pull("all-minilm")
    llama = read_shape(sim.url, "llama3.2:1b")
    assert llama is not None and llama.kv_bytes(1) == 32 * 1024  # 2 x 16 layers x 8 x 128
    # BERT has no KV-head or key/value-length keys: all heads, each 384 / 12 wide.
    bert = read_shape(sim.url, "all-minilm")
    assert bert is not None and (bert.kv_heads, bert.key_length) == (12, 32)
    assert bert.kv_bytes(1) == 2 * 6 * 12 * 64
    assert read_shape(sim.url, "qwen3:0.6b") is None  # not pulled: the check is skipped


def test_estimate_is_weights_plus_kv_for_every_slot_capped_at_the_trained_context() -> None:
    need = estimate(GEMMA, num_parallel=4, ctx=32768)
    assert need.kv_bytes == 4 * gemma_kv(32768) == int(2.953125 * GIB)
    assert need.total_bytes == GEMMA_SIZE + need.kv_bytes + RESERVE
    small = ModelShape("qwen3:0.6b", 522_643_360, 28, 8, 128, 128, 40960)
    assert estimate(small, 1, 65536).ctx == 40960


def test_a_plan_that_does_not_fit_is_refused_with_the_numbers_and_what_fits() -> None:
    need = estimate(GEMMA, 4, 32768)
    check_fit(GEMMA, need, GpuBudget("GPU 0 (NVIDIA L4)", 7 * GIB))  # 6.6 GiB fits 7
    with pytest.raises(DoesNotFit) as caught:
        check_fit(GEMMA, need, GpuBudget("GPU 0 (NVIDIA L4)", 5 * GIB))
    room = 5 * GIB - GEMMA_SIZE - RESERVE
    assert room // gemma_kv(32768) == 1
    assert max(c for c in range(256, 131073, 256) if 4 * gemma_kv(c) <= room) == 12032
    assert str(caught.value) == (
        "gemma3:4b does not fit: it needs 6.6 GiB (weights 3.1 GiB + KV cache 3.0 GiB for 4 "
        "slots x 32768 tokens + 512.0 MiB reserve) per backend, but only 5.0 GiB is free on GPU "
        "0 (NVIDIA L4); largest that fits: --num-parallel 1 (at --ctx 32768) or --ctx 12032 (at "
        "--num-parallel 4); --force starts anyway"
    )
    with pytest.raises(DoesNotFit, match=r"the weights alone need 3\.6 GiB: use a smaller"):
        check_fit(GEMMA, need, GpuBudget("GPU 0", 3 * GIB))
    with pytest.raises(DoesNotFit, match=r"x2 backends on these GPUs.*fewer backends"):
        check_fit(GEMMA, need, GpuBudget("GPU 0", 12 * GIB), sharing=2)


def test_ollamas_own_gpu_lines_give_the_budget_and_cpu_lines_do_not() -> None:
    budget = budget_from_log(f"{CPU_LINE}\n{A10G_LINE}\nother line\n")
    assert budget is not None
    assert budget.free_bytes == int(21.7 * GIB)
    assert budget.label == "GPU-dd1f9e61-27e0-16ad-dd71-766641270fd6 (NVIDIA A10G)"
    two = budget_from_log(f"{A10G_LINE}\n{A10G_LINE}")
    assert two is not None and two.free_bytes == 2 * int(21.7 * GIB)
    assert budget_from_log(CPU_LINE) is None and budget_from_log("") is None


@pytest.mark.parametrize(
    ("size", "vram", "line"),
    [
        (100, 62, "gemma3:4b is 38% on CPU: lower --num-parallel or --ctx"),
        (1000, 999, "gemma3:4b is 1% on CPU: lower --num-parallel or --ctx"),
        (100, 0, "gemma3:4b is 100% on CPU: lower --num-parallel or --ctx"),
        (100, 100, None),
    ],
    ids=["partial", "sliver", "all-on-cpu", "all-in-vram"],
)
def test_spill_line(size: int, vram: int, line: str | None) -> None:
    assert spill_line(LoadedModel("gemma3:4b", size, vram)) == line


class _LocalProcess:
    """An `ollama serve` on this host, as the check sees one (the simulator answers for it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def record(self) -> BackendRecord:
        return BackendRecord(kind="process", url=self.url, name="ollama-farm-1")

    def log_tail(self, lines: int = 20) -> str:
        return ""


L4 = {"name": "NVIDIA L4", "total": 24 * GIB, "mig": None}
L4_UUIDS = ("GPU-11111111-2222-4333-8444-555555555555", "GPU-66666666-7777-4888-8999-000000000000")


@pytest.fixture
def nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pynvml's functions faked in this process; returns the host file to write."""
    monkeypatch.setenv(fake_nvml.ENV, str(tmp_path / "nvml.json"))
    for name, fake in fake_nvml.functions().items():
        monkeypatch.setattr(fake_nvml.pynvml, name, fake)
    return tmp_path / "nvml.json"


def _two_l4(nvml: Path, free_gib: tuple[int, int]) -> None:
    gpus = [{**L4, "uuid": u, "free": f * GIB} for u, f in zip(L4_UUIDS, free_gib, strict=True)]
    nvml.write_text(json.dumps({"driver": "550.54.15", "cuda": 12040, "gpus": gpus}))


def test_local_backends_are_checked_against_nvml_free_memory_together(
    sim: SimServer, nvml: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _two_l4(nvml, (6, 6))
    config = UpSettings(model="gemma3:4b", num_parallel=4, ctx=32768, mode="local")
    check_before_load(config, [_LocalProcess(sim.url)])  # 6.6 GiB of 12 GiB over both GPUs
    both = [_LocalProcess(sim.url), _LocalProcess(sim.url)]
    with pytest.raises(DoesNotFit) as caught:
        check_before_load(config, both)
    assert "x2 backends on these GPUs, but only 12.0 GiB is free on GPU 0 (NVIDIA L4) + GPU 1" in (
        str(caught.value)
    )
    with caplog.at_level(logging.WARNING):
        check_before_load(config.model_copy(update={"force": True}), both)
    assert "(NVIDIA L4); largest that fits: --num-parallel 3 (at --ctx 32768)" in caplog.text
    assert "; starting anyway (--force)" in caplog.text
    check_before_load(config.model_copy(update={"cpu": True}), both)  # --cpu: no GPU to fit


def test_a_backend_pinned_to_a_gpu_is_checked_against_that_gpu_alone(
    sim: SimServer, nvml: Path
) -> None:
    _two_l4(nvml, (8, 2))
    config = UpSettings(model="gemma3:4b", num_parallel=4, ctx=32768, mode="local")
    slots = [GpuSlot(i, u, "NVIDIA L4", 24 * GIB, 0) for i, u in enumerate(L4_UUIDS)]
    placed = [Placement(i + 1, f"ollama-farm-{i + 1}", 11434 + i, None, slot, "127.0.0.1")
              for i, slot in enumerate(slots)]  # fmt: skip
    backends = [_LocalProcess(sim.url), _LocalProcess(sim.url)]
    check_before_load(config, backends[:1], placed[:1])  # GPU 0: 8 GiB free for 6.6 GiB
    with pytest.raises(DoesNotFit, match=r"only 2\.0 GiB is free on GPU 1 \(NVIDIA L4\); the wei"):
        check_before_load(config, backends, placed)


def _up(farm: Farm, vram_mib: int, *extra: str) -> tuple[object, list[int]]:
    front, back = free_ports(2)
    farm.env["FARM_SIM_VRAM_MIB"] = str(vram_mib)
    done = farm.run(
        "up", "--mode", "sim", "--model", "gemma3:4b", "--num-parallel", "4", "--ctx", "32768",
        "--host", "127.0.0.1", "--front-port", str(front), "--back-port", str(back), *extra,
    )  # fmt: skip
    return done, [front, back]


def test_up_refuses_a_model_that_does_not_fit_the_simulated_gpu(farm: Farm) -> None:
    done, ports = _up(farm, 5120, "--detach")
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert errors == [done.stderr.splitlines()[-1]]
    assert errors[0].startswith(
        "python -m farm up: error: gemma3:4b does not fit: it needs 6.6 GiB"
    )
    assert (
        "only 5.0 GiB is free on GPU-00000000-0000-4000-8000-0000000051a1 (ollama-farm" in errors[0]
    )
    assert "--num-parallel 1 (at --ctx 32768) or --ctx 12032 (at --num-parallel 4)" in errors[0]
    assert "load_duration" not in done.stderr  # refused before anything was loaded
    assert not farm.state_file.exists() and all(port_is_free(p) for p in ports)


def test_force_starts_anyway_and_warns_that_the_model_spills_onto_the_cpu(farm: Farm) -> None:
    done, _ = _up(farm, 5120, "--detach", "--force")
    assert done.returncode == 0, done.stderr
    assert "does not fit" in done.stderr and "; starting anyway (--force)" in done.stderr
    size = GEMMA_SIZE + 4 * gemma_kv(32768)  # the simulator's size: no reserve
    share = round(100 * (size - 5120 * MIB) / size)
    assert share == 18
    assert f"gemma3:4b is {share}% on CPU: lower --num-parallel or --ctx" in done.stderr


def test_a_model_that_fits_starts_without_refusal_or_spill(farm: Farm) -> None:
    done, _ = _up(farm, 16384, "--detach")
    assert done.returncode == 0, done.stderr
    assert "needs about 6.6 GiB" in done.stderr
    assert "does not fit" not in done.stderr and "on CPU" not in done.stderr
