"""What a loaded model occupies, and how much of it the simulated GPU holds (`/api/ps`).

Size: the weights plus an f16 KV cache for `num_ctx × parallel` tokens (Ollama gives every slot
its own `num_ctx`), each token in each layer taking `2 bytes × head_count_kv × (key_length +
value_length)`, the shape read from the model's `model_info` as llama.cpp sizes its cache.
Absent key/value lengths are `embedding_length / head_count`; absent KV heads are the attention
heads. Sliding-window layers (Gemma 2: every other layer, Gemma 3: all but every sixth) keep
only `<arch>.attention.sliding_window` tokens per slot. A model without these keys (an older
store) falls back to its embedding width.

VRAM: unset, the GPU holds everything (`size_vram == size`). Set, runners are placed in load
order, each taking what the earlier ones left; the rest is "on the CPU", which is how Ollama's
partial offload shows in `/api/ps` (`size_vram < size`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from farm.sim.store import LocalModel

F16_BYTES = 2
# Architectures whose every n-th layer is global and the rest sliding-window (not in the GGUF).
GLOBAL_EVERY = {"gemma2": 2, "gemma3": 6}


def _number(info: Mapping[str, Any], key: str) -> int:
    value = info.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def kv_bytes_per_slot(info: Mapping[str, Any], num_ctx: int) -> int | None:
    """One slot's KV cache of `num_ctx` tokens across all layers; None when `info` lacks the
    shape."""
    arch = info.get("general.architecture")
    layers = _number(info, f"{arch}.block_count")
    heads = _number(info, f"{arch}.attention.head_count")
    if not layers or not heads:
        return None
    kv_heads = _number(info, f"{arch}.attention.head_count_kv") or heads
    width = _number(info, f"{arch}.embedding_length") // heads
    key = _number(info, f"{arch}.attention.key_length") or width
    value = _number(info, f"{arch}.attention.value_length") or width
    window = _number(info, f"{arch}.attention.sliding_window")
    every = GLOBAL_EVERY.get(str(arch), 0) if window else 0
    local = layers - layers // every if every else 0
    tokens = (layers - local) * num_ctx + local * min(num_ctx, window)
    return F16_BYTES * kv_heads * (key + value) * tokens


def runner_bytes(model: LocalModel, num_ctx: int, parallel: int) -> int:
    """Weights plus the KV cache of `parallel` slots of `num_ctx` tokens."""
    per_slot = kv_bytes_per_slot(model.config.get("model_info") or {}, num_ctx)
    if per_slot is None:
        # The older estimate: 4 bytes per embedding value and token.
        per_slot = int(model.config.get("embedding_length", 1024)) * 4 * num_ctx
    return model.size + per_slot * parallel


def vram_split(sizes: Sequence[int], vram_bytes: int | None) -> list[int]:
    """The VRAM part of each size, placed in order into `vram_bytes` (None: unlimited)."""
    if vram_bytes is None:
        return list(sizes)
    left, out = vram_bytes, []
    for size in sizes:
        placed = min(size, left)
        out.append(placed)
        left -= placed
    return out
