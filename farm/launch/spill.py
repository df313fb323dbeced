"""The CPU-spill warning: after warm-up, say when part of a loaded model sits on the CPU.

`/api/ps` gives each loaded model's `size` (weights + KV cache + graph) and `size_vram` (the
part in VRAM). Less in VRAM than the size means Ollama offloaded only some layers and runs the
rest on the CPU: the most common reason an Ollama box is slow without saying why. One line per
such model names the share and the two settings that shrink it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One `/api/ps` entry, as far as memory goes."""

    name: str
    size_bytes: int
    vram_bytes: int

    @property
    def cpu_percent(self) -> int:
        """The share outside VRAM, rounded as `ollama ps` rounds it (0-100)."""
        if self.size_bytes <= 0:
            return 0
        outside = max(self.size_bytes - self.vram_bytes, 0)
        return round(100 * outside / self.size_bytes)


def decode_ps(doc: Mapping[str, Any]) -> list[LoadedModel]:
    """The entries of a `/api/ps` document that carry both sizes."""
    out = []
    for entry in doc.get("models") or ():
        if not isinstance(entry, Mapping):
            continue
        size, vram = entry.get("size"), entry.get("size_vram")
        if isinstance(size, int) and isinstance(vram, int):
            out.append(LoadedModel(str(entry.get("name", "?")), size, vram))
    return out


def spill_line(model: LoadedModel) -> str | None:
    """`gemma3:4b is 38% on CPU: lower --num-parallel or --ctx`, or None when all is in VRAM."""
    if model.vram_bytes >= model.size_bytes:
        return None
    # A sliver under 0.5 % still rounds to a visible 1 %: any spill slows every token.
    share = max(model.cpu_percent, 1)
    return f"{model.name} is {share}% on CPU: lower --num-parallel or --ctx"


def spill_warnings(base_url: str, transport: httpx.BaseTransport | None = None) -> list[str]:
    """One line per model at `base_url` that spills onto the CPU; [] when none (or no answer)."""
    try:
        with httpx.Client(timeout=30.0, trust_env=False, transport=transport) as client:
            resp = client.get(f"{base_url}/api/ps")
        resp.raise_for_status()
        doc = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("cannot read %s/api/ps (%s): no CPU-spill check", base_url, exc)
        return []
    models = decode_ps(doc) if isinstance(doc, Mapping) else []
    return [line for line in map(spill_line, models) if line is not None]
