"""The GPUs a host offers its backends, and which of them `--gpus all|per-gpu|LIST` picks.

This host's GPUs come from NVML (`farm.gpu.inventory`); a remote Docker engine's from a
short-lived container there (`farm.launch.engine_gpus`). Either way the launcher sees the same
`GpuSlot` records, so planning never cares where a GPU was found. A backend is pinned to its GPU
by UUID, never by index: CUDA's and NVML's index orders can differ, a UUID cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from farm.gpu.errors import NvmlUnavailable
from farm.gpu.inventory import read_inventory
from farm.launch.errors import PreflightError


@dataclass(frozen=True, slots=True)
class GpuSlot:
    """One GPU a backend can be pinned to."""

    index: int
    uuid: str
    name: str
    total_bytes: int
    free_bytes: int

    @property
    def label(self) -> str:
        """`gpu0 GPU-5f3c... NVIDIA H100 80GB HBM3`: what status and /_health show."""
        return f"gpu{self.index} {self.uuid} {self.name}"


def local_gpus() -> tuple[GpuSlot, ...]:
    """This host's GPUs through NVML; PreflightError (one line) when NVML cannot list them."""
    try:
        inventory = read_inventory()
    except NvmlUnavailable as exc:
        raise PreflightError(f"--gpus needs the GPU list: {exc}") from exc
    return tuple(
        GpuSlot(g.index, g.uuid, g.name, g.total_bytes, g.free_bytes) for g in inventory.gpus
    )


def choose(wanted: str, available: Sequence[GpuSlot], where: str) -> tuple[GpuSlot, ...]:
    """The GPUs `--gpus per-gpu` or `--gpus LIST` (indices or UUIDs, in the order given) picks
    from `available` on host `where`; PreflightError naming what the host has otherwise."""
    if not available:
        raise PreflightError(
            f"--gpus {wanted}: no NVIDIA GPU found on {where}; run `invoke gpu-setup`, "
            "or use --gpus all / --cpu"
        )
    if wanted == "per-gpu":
        return tuple(available)
    by_key = {str(g.index): g for g in available} | {g.uuid: g for g in available}
    chosen = []
    for key in wanted.split(","):
        gpu = by_key.get(key)
        if gpu is None:
            known = ", ".join(f"{g.index} ({g.uuid})" for g in available)
            raise PreflightError(f"--gpus {wanted}: no GPU {key} on {where}; it has {known}")
        chosen.append(gpu)
    return tuple(chosen)
