"""Byte counts as people read them: binary units with one decimal, the way Ollama logs them.

Ollama writes memory as `total="22.0 GiB" available="21.7 GiB"` (Go's `format.HumanBytes2`):
powers of 1024, one decimal place. The farm prints the same form, so the numbers a user sees
from us and from Ollama's log compare at a glance; `parse_binary` reads them back.
"""

from __future__ import annotations

import re

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)\s*")


def binary(n_bytes: int) -> str:
    """`3338792448` -> `"3.1 GiB"`; whole bytes below 1 KiB."""
    value = float(n_bytes)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def parse_binary(text: str) -> int:
    """`"21.7 GiB"` -> bytes; ValueError for anything else."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size like '21.7 GiB': {text!r}")
    return int(float(match[1]) * 1024 ** _UNITS.index(match[2]))
