"""A model's shape as its backend describes it: what its weights and KV cache will take.

Read after the pull, before the load: `/api/show`'s `model_info` holds the GGUF keys that size
a KV cache (`<arch>.block_count`, `.attention.head_count_kv`, `.attention.key_length`,
`.attention.value_length`, `.context_length`), and `/api/tags` the size of the weights. Absent
key/value lengths are `embedding_length / head_count` (llama.cpp's default head width); absent
KV heads are the attention heads (no grouped-query attention).

Sliding-window models keep only the last `<arch>.attention.sliding_window` tokens in their
local layers. Which layers are local is fixed by the architecture, not stored in the GGUF: Gemma
2 alternates local and global layers, Gemma 3 makes every sixth layer global. Other models with
a window are counted as all-global, which can only overestimate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

# llama.cpp's default KV cache type is f16; Ollama keeps it unless OLLAMA_KV_CACHE_TYPE says
# otherwise, which the farm never sets.
F16_BYTES = 2
# Every n-th layer attends globally; the others use the sliding window.
GLOBAL_EVERY = {"gemma2": 2, "gemma3": 6}


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What the memory estimate needs to know about one model."""

    model: str
    weights_bytes: int
    block_count: int
    kv_heads: int
    key_length: int
    value_length: int
    context_length: int  # the trained maximum; 0 when the model does not say
    sliding_window: int = 0  # tokens a local layer keeps; 0: no local layers
    local_layers: int = 0

    @property
    def layer_bytes_per_token(self) -> int:
        """One token's keys and values in one layer (f16)."""
        return F16_BYTES * self.kv_heads * (self.key_length + self.value_length)

    def kv_bytes(self, ctx: int) -> int:
        """One slot's KV cache for `ctx` tokens: global layers keep all, local ones the window."""
        local = self.local_layers * min(ctx, self.sliding_window)
        return self.layer_bytes_per_token * ((self.block_count - self.local_layers) * ctx + local)


def _int(info: Mapping[str, Any], key: str) -> int:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def shape_from_show(model: str, show: Mapping[str, Any], weights_bytes: int) -> ModelShape | None:
    """The shape from a `/api/show` document; None when its `model_info` lacks the keys."""
    info = show.get("model_info")
    if not isinstance(info, Mapping):
        return None
    arch = info.get("general.architecture")
    layers = _int(info, f"{arch}.block_count")
    heads = _int(info, f"{arch}.attention.head_count")
    if not isinstance(arch, str) or not layers or not heads:
        return None
    width = _int(info, f"{arch}.embedding_length") // heads
    window = _int(info, f"{arch}.attention.sliding_window")
    every = GLOBAL_EVERY.get(arch, 0) if window else 0
    return ModelShape(
        model=model,
        weights_bytes=weights_bytes,
        block_count=layers,
        kv_heads=_int(info, f"{arch}.attention.head_count_kv") or heads,
        key_length=_int(info, f"{arch}.attention.key_length") or width,
        value_length=_int(info, f"{arch}.attention.value_length") or width,
        context_length=_int(info, f"{arch}.context_length"),
        sliding_window=window if every else 0,
        local_layers=layers - layers // every if every else 0,
    )


def tag_key(name: str) -> str:
    """A name as `/api/tags` lists it: no default registry or namespace, `:latest` implied."""
    short = name.lower().removeprefix("registry.ollama.ai/").removeprefix("library/")
    return short if ":" in short.rsplit("/", 1)[-1] else f"{short}:latest"


def weights_size(tags: Mapping[str, Any], model: str) -> int | None:
    """The size `/api/tags` gives the model (its weights, config and template layers)."""
    wanted = tag_key(model)
    for entry in tags.get("models") or ():
        if isinstance(entry, Mapping) and tag_key(str(entry.get("name", ""))) == wanted:
            size = entry.get("size")
            return int(size) if isinstance(size, int) else None
    return None


def read_shape(
    base_url: str, model: str, transport: httpx.BaseTransport | None = None
) -> ModelShape | None:
    """Ask the backend at `base_url`; None (logged) when it cannot say, so the check is skipped."""
    try:
        with httpx.Client(timeout=30.0, trust_env=False, transport=transport) as client:
            show = client.post(f"{base_url}/api/show", json={"model": model})
            tags = client.get(f"{base_url}/api/tags")
        show.raise_for_status()
        tags.raise_for_status()
        show_doc, tags_doc = show.json(), tags.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning(
            "cannot read %s's metadata from %s (%s): fit check skipped", model, base_url, exc
        )
        return None
    size = weights_size(tags_doc, model) if isinstance(tags_doc, Mapping) else None
    shape = shape_from_show(model, show_doc, size or 0) if isinstance(show_doc, Mapping) else None
    if shape is None or size is None:
        log.info("%s's metadata does not give its layers and size: fit check skipped", model)
        return None
    return shape
