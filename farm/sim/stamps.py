"""RFC 3339 timestamps as Go prints them (RFC3339Nano: trailing zeros of the fraction trimmed).

Inference responses use UTC (`...Z`); list responses use the server's local offset.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def _fraction(ns: int) -> str:
    digits = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f".{digits}" if digits else ""


def utc_now() -> str:
    """Now in UTC with nanoseconds, e.g. `2026-05-01T12:00:00.123456789Z`."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}{_fraction(ns)}Z"


def local_stamp(epoch_s: float) -> str:
    """A wall-clock time in the local zone with its offset, e.g. `...-07:00`."""
    ns = int(epoch_s * 1e9)
    moment = datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    offset = moment.strftime("%z")
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}{_fraction(ns)}{zone}"


def unix_seconds(epoch_s: float) -> int:
    """Whole seconds since the epoch (OpenAI `created`)."""
    return int(epoch_s)
