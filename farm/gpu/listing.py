"""How `invoke gpus` shows the inventory: a table for people, JSON for programs.

The table has one row per GPU, then an indented row per MIG instance and per process holding
memory; the JSON is the inventory record as it is (bytes as integers), so scripts never parse
the table.
"""

from __future__ import annotations

import dataclasses
import json

from farm.common.sizes import binary
from farm.gpu.inventory import Gpu, Inventory

HEADER = ("GPU", "NAME", "UUID", "FREE", "TOTAL", "MIG", "PROCESSES")


def as_json(inventory: Inventory) -> str:
    """The inventory as one JSON document (sizes in bytes, `_bytes` in every size's name)."""
    return json.dumps(dataclasses.asdict(inventory), indent=2)


def _row(gpu: Gpu) -> tuple[str, ...]:
    return (
        str(gpu.index),
        gpu.name,
        gpu.uuid,
        binary(gpu.free_bytes),
        binary(gpu.total_bytes),
        gpu.mig,
        str(len(gpu.processes)),
    )


def _details(gpu: Gpu) -> list[str]:
    lines = [
        f"  MIG {m.index}: {m.uuid} {binary(m.free_bytes)} free of {binary(m.total_bytes)}"
        for m in gpu.mig_devices
    ]
    for proc in gpu.processes:
        used = "?" if proc.used_bytes is None else binary(proc.used_bytes)
        lines.append(f"  pid {proc.pid} {proc.name}: {used}")
    return lines


def as_table(inventory: Inventory) -> list[str]:
    """A summary line, then the table; a host whose driver sees no GPU says so."""
    count = len(inventory.gpus)
    lines = [
        f"driver {inventory.driver_version}, CUDA {inventory.cuda_version}, "
        f"{count} GPU{'' if count == 1 else 's'}"
    ]
    if not inventory.gpus:
        return lines
    rows = [HEADER, *(_row(g) for g in inventory.gpus)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    lines.append(fmt(HEADER))
    for gpu, row in zip(inventory.gpus, rows[1:], strict=True):
        lines.append(fmt(row))
        lines += _details(gpu)
    return lines
