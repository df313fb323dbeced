"""Reading RFC 3339 UTC timestamps with nanoseconds, as Ollama writes `created_at`.

The simulator keeps its own writer (`farm.sim.stamps`) on purpose: a shared serializer would
hide mirror-image bugs between the witness and what it checks.
"""

from __future__ import annotations

from datetime import UTC, datetime

NS_PER_S = 1_000_000_000


def parse_ns(text: str | None) -> int | None:
    """Unix ns of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (up to 9 fractional digits); None when
    absent or in another form (another offset, a proxy that rewrote it)."""
    if not text or not text.endswith("Z"):
        return None
    whole, _, frac = text[:-1].partition(".")
    if frac and not (frac.isdigit() and len(frac) <= 9):
        return None
    try:
        base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(base.timestamp()) * NS_PER_S + (int(frac.ljust(9, "0")) if frac else 0)
