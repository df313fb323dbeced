"""The usage report (`invoke usage`): finished requests grouped by key, model or day."""

from __future__ import annotations

import csv
import io
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from farm.keys.errors import UsageQueryError
from farm.keys.records import UsageRow

Grouping = Literal["key", "model", "day"]
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
COLUMNS = ("group", "requests", "errors", "prompt_tokens", "output_tokens", "ttft_p50_s", "busy_s")


def since_epoch(span: str, now: float | None = None) -> float:
    """The Unix time `span` ago ('7d', '12h', '30m', '1w', '90s')."""
    match = _SPAN.fullmatch(span.strip().lower())
    if match is None:
        raise UsageQueryError(f"--since {span!r}: give a span like 90s, 30m, 12h, 7d or 2w")
    return (time.time() if now is None else now) - float(match[1]) * _UNIT_S[match[2]]


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One group's totals."""

    group: str
    requests: int
    errors: int
    prompt_tokens: int
    output_tokens: int
    ttft_p50_s: float | None
    busy_s: float


def summarise(rows: Iterable[UsageRow], by: Grouping) -> list[UsageLine]:
    """Totals per group, largest output first."""
    groups: dict[str, list[UsageRow]] = {}
    for row in rows:
        groups.setdefault(_group_of(row, by), []).append(row)
    lines = [_line(name, members) for name, members in groups.items()]
    if by == "day":
        return sorted(lines, key=lambda line: line.group)
    return sorted(lines, key=lambda line: (-line.output_tokens, line.group))


def _group_of(row: UsageRow, by: Grouping) -> str:
    if by == "key":
        return row.key
    if by == "model":
        return row.model or "-"
    return time.strftime("%Y-%m-%d", time.gmtime(row.finished_at))


def _line(name: str, rows: Sequence[UsageRow]) -> UsageLine:
    ttfts = [r.ttft_s for r in rows if r.ttft_s is not None and r.status < 400]
    return UsageLine(
        group=name,
        requests=len(rows),
        errors=sum(1 for r in rows if r.status >= 400),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        ttft_p50_s=statistics.median(ttfts) if ttfts else None,
        busy_s=sum(r.duration_s for r in rows),
    )


def _cells(line: UsageLine) -> list[str]:
    ttft = "-" if line.ttft_p50_s is None else f"{line.ttft_p50_s:.3f}"
    return [
        line.group,
        str(line.requests),
        str(line.errors),
        str(line.prompt_tokens),
        str(line.output_tokens),
        ttft,
        f"{line.busy_s:.1f}",
    ]


def render_table(lines: Sequence[UsageLine], by: Grouping) -> str:
    """A fixed-width table; the first column is named after the grouping."""
    header = [by, *COLUMNS[1:]]
    body = [_cells(line) for line in lines]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    out = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    ]
    return "\n".join(out) + "\n"


def render_csv(lines: Sequence[UsageLine], by: Grouping) -> str:
    """The same as CSV, with the grouping as the first column's name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([by, *COLUMNS[1:]])
    writer.writerows(_cells(line) for line in lines)
    return buffer.getvalue()
