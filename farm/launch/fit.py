"""Will it fit? A backend's memory estimate against the free memory of the GPUs it gets.

A backend needs the weights, plus a KV cache for `num_parallel` slots of `num_ctx` tokens each
(Ollama gives every slot its own context; sliding-window layers keep less, `ModelShape`), plus
a reserve for the CUDA context and llama.cpp's compute graph. The context is capped at the
model's trained length, as Ollama caps it. When the total (times the backends sharing those
GPUs) exceeds their free memory, `check_fit` refuses with the numbers and the largest
`--num-parallel` and `--ctx` that would fit; what does not fit on the GPU would run on the
CPU, many times slower.

The free memory comes from NVML (`budget_of`) or, where NVML cannot see the GPU (a remote
engine, the simulator), from Ollama's own start-up line `msg="inference compute" ...
available="21.7 GiB"` (`budget_from_log`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from farm.common.sizes import binary, parse_binary
from farm.gpu.inventory import Gpu
from farm.launch.errors import DoesNotFit
from farm.launch.shape import ModelShape

# CUDA context (~0.3-0.5 GiB per process) and the compute graph: a rough, documented floor.
RESERVE_BYTES = 512 * 2**20
# Suggested contexts are rounded down to this many tokens, so they read as settings, not noise.
CTX_STEP = 256
# `key=value` or `key="a value"`, as Go's slog text handler writes them.
_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|(\S+))')


@dataclass(frozen=True, slots=True)
class Estimate:
    """One backend's memory need, by part."""

    weights_bytes: int
    kv_bytes: int
    reserve_bytes: int
    num_parallel: int
    ctx: int  # per slot, after the cap at the model's trained length

    @property
    def total_bytes(self) -> int:
        """Weights + KV cache + reserve."""
        return self.weights_bytes + self.kv_bytes + self.reserve_bytes

    def describe(self) -> str:
        """`9.6 GiB (weights 3.1 GiB + KV cache 6.0 GiB for 4 slots x 8192 tokens + 0.5 GiB
        reserve)`."""
        return (
            f"{binary(self.total_bytes)} (weights {binary(self.weights_bytes)} + KV cache "
            f"{binary(self.kv_bytes)} for {self.num_parallel} slots x {self.ctx} tokens + "
            f"{binary(self.reserve_bytes)} reserve)"
        )


@dataclass(frozen=True, slots=True)
class GpuBudget:
    """The free memory of the GPUs one backend gets, and how messages name them."""

    label: str
    free_bytes: int


def effective_ctx(shape: ModelShape, ctx: int) -> int:
    """`num_ctx` as Ollama runs it: no longer than the model was trained for."""
    return min(ctx, shape.context_length) if shape.context_length else ctx


def estimate(shape: ModelShape, num_parallel: int, ctx: int) -> Estimate:
    """The memory one backend needs for `num_parallel` slots of `ctx` tokens."""
    per_slot = effective_ctx(shape, ctx)
    kv = shape.kv_bytes(per_slot) * num_parallel
    return Estimate(shape.weights_bytes, kv, RESERVE_BYTES, num_parallel, per_slot)


def _gpu_free(gpu: Gpu) -> tuple[str, int]:
    # With MIG on, a process gets one MIG instance: its largest is the most it can have.
    if gpu.mig == "enabled" and gpu.mig_devices:
        best = max(gpu.mig_devices, key=lambda m: m.free_bytes)
        return f"GPU {gpu.index} MIG {best.index} ({gpu.name})", best.free_bytes
    return f"GPU {gpu.index} ({gpu.name})", gpu.free_bytes


def budget_of(gpus: Sequence[Gpu]) -> GpuBudget:
    """The GPUs one backend sees (Ollama spreads a model over them when one is too small)."""
    parts = [_gpu_free(g) for g in gpus]
    label = " + ".join(name for name, _ in parts) or "no GPU"
    return GpuBudget(label, sum(free for _, free in parts))


def budget_of_uuid(gpus: Sequence[Gpu], uuid: str) -> GpuBudget | None:
    """The budget of the GPU (`GPU-...`) or MIG instance (`MIG-...`) a backend is pinned to."""
    for gpu in gpus:
        if gpu.uuid == uuid:
            return budget_of([gpu])
        for mig in gpu.mig_devices:
            if mig.uuid == uuid:
                return GpuBudget(f"GPU {gpu.index} MIG {mig.index} ({gpu.name})", mig.free_bytes)
    return None


def budget_from_log(log_text: str) -> GpuBudget | None:
    """The GPUs Ollama reported at start (`available=`); None when it reported none."""
    labels, free = [], 0
    for line in log_text.splitlines():
        if 'msg="inference compute"' not in line:
            continue
        fields = {m[1]: m[2] if m[2] is not None else m[3] for m in _FIELD.finditer(line)}
        if fields.get("library", "cpu").lower() == "cpu" or "available" not in fields:
            continue
        try:
            free += parse_binary(fields["available"])
        except ValueError:
            continue
        labels.append(f"{fields.get('id', 'GPU')} ({fields.get('name', 'GPU')})")
    return GpuBudget(" + ".join(labels), free) if labels else None


def largest_parallel(shape: ModelShape, ctx: int, room_bytes: int) -> int:
    """The most slots of `ctx` tokens whose cache fits in `room_bytes` with the weights."""
    per_slot = shape.kv_bytes(effective_ctx(shape, ctx))
    left = room_bytes - shape.weights_bytes - RESERVE_BYTES
    return max(left // per_slot, 0) if per_slot else 0


def largest_ctx(shape: ModelShape, num_parallel: int, room_bytes: int) -> int:
    """The longest per-slot context (a multiple of CTX_STEP, at most the trained length) whose
    cache for `num_parallel` slots fits in `room_bytes` with the weights; 0 if none does."""
    left = room_bytes - shape.weights_bytes - RESERVE_BYTES
    if left <= 0 or shape.kv_bytes(CTX_STEP) * num_parallel > left:
        return 0
    # The cache only grows with the context (piecewise linear with a window): bisect the steps.
    low, high = 1, max(shape.context_length, 1 << 24) // CTX_STEP
    while low < high:
        mid = (low + high + 1) // 2
        if shape.kv_bytes(mid * CTX_STEP) * num_parallel <= left:
            low = mid
        else:
            high = mid - 1
    return low * CTX_STEP


def _suggestion(shape: ModelShape, need: Estimate, room: int, sharing: int) -> str:
    parallel = largest_parallel(shape, need.ctx, room)
    ctx = largest_ctx(shape, need.num_parallel, room)
    options = []
    if parallel >= 1:
        options.append(f"--num-parallel {parallel} (at --ctx {need.ctx})")
    if ctx >= CTX_STEP:
        options.append(f"--ctx {ctx} (at --num-parallel {need.num_parallel})")
    if sharing > 1:
        options.append("fewer backends on these GPUs (--replicas, or --gpus per-gpu)")
    if not options:
        return (
            f"the weights alone need {binary(shape.weights_bytes + RESERVE_BYTES)}: use a smaller "
            "model or quantisation, a bigger GPU, or --cpu"
        )
    return "largest that fits: " + " or ".join(options)


def fit_problem(
    shape: ModelShape, need: Estimate, budget: GpuBudget, sharing: int = 1
) -> str | None:
    """Why `sharing` backends of `need` do not fit `budget`, with the numbers and what would
    fit (one line); None when they fit."""
    if need.total_bytes * sharing <= budget.free_bytes:
        return None
    who = "per backend" if sharing == 1 else f"per backend, x{sharing} backends on these GPUs"
    room = budget.free_bytes // sharing
    return (
        f"{shape.model} does not fit: it needs {need.describe()} {who}, but only "
        f"{binary(budget.free_bytes)} is free on {budget.label}; "
        f"{_suggestion(shape, need, room, sharing)}"
    )


def check_fit(shape: ModelShape, need: Estimate, budget: GpuBudget, sharing: int = 1) -> None:
    """Refuse (DoesNotFit, one line) when `sharing` backends of `need` exceed `budget`."""
    problem = fit_problem(shape, need, budget, sharing)
    if problem is not None:
        raise DoesNotFit(f"{problem}; --force starts anyway")
