"""The relay-at-scale table: one line per (path, streams, loss) from rows and node counts.

Pure: it reads the `StreamRow`s and `ScenarioRecord`s it is given. Each relayed line is set
against the direct streams of the same concurrency (`+` columns: relayed minus direct, p50).
Formulas:

- `msgs/100 lines`: messages the relay sent (the local node's count, before any injected
  loss) per 100 lines asked for; `peer msgs/100 lines` the same for messages to the relay;
- `B/line`: bytes of the relay's messages (the SDK's encrypted payloads) per line;
- `+TTFT p50 ms`: p50 of first line - request sent, minus the direct p50;
- `+token delay p50 ms`: p50 over streams of each stream's median line lateness (arrival -
  `created_at`), minus the direct one: what the path adds to every token, batching included;
- `lost`: lines asked for and never received; `lost, end came`: those of streams whose end
  came; `reported`: what the peers could tell (`last_seq` - lines received, summed over
  streams whose end came: exact reporting makes it `lost, end came`); `no end`: streams whose
  end never came (a lost request, or a lost end); `dup`: lines handed to the caller twice or
  out of order; `errors`: streams that ended with an error (a reported gap included);
- `relay CPU`: CPU seconds of the relay's process tree (Python and its Node bridge) per
  second of the scenario, in cores; `relay RSS MB`: peak, of the tree and of Python alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.quantiles import quantile
from bench.render import md_table
from bench.scale_probe import StreamRow
from bench.scale_rig import ScenarioRecord

COLUMNS = [
    "path", "streams", "peers", "loss", "msgs/100 lines", "peer msgs/100 lines", "B/line",
    "+TTFT p50 ms", "+token delay p50 ms", "lost", "lost, end came", "reported", "no end",
    "dup", "errors",
    "relay CPU cores", "relay RSS MB", "relay py RSS MB",
]  # fmt: skip


def _p50_ms(values: Sequence[float | None]) -> float | None:
    value = quantile(values, 0.5)
    return None if math.isnan(value) else 1000 * value


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _direct(rows: Sequence[StreamRow], streams: int) -> tuple[float | None, float | None]:
    """The direct streams' TTFT p50 and median lateness p50 at `streams` (ms)."""
    good = [r for r in rows if r.path == "direct" and r.streams == streams and r.error is None]
    return _p50_ms([r.ttft_s for r in good]), _p50_ms([r.lateness_p50_s for r in good])


def summarize(rows: Sequence[StreamRow], records: Sequence[ScenarioRecord]) -> list[dict[str, Any]]:
    """One dict per scenario (keys: `COLUMNS`, then the extra measures), in run order."""
    lines: list[dict[str, Any]] = []
    for rec in records:
        mine = [
            r
            for r in rows
            if (r.path, r.streams, r.peers, r.loss) == (rec.path, rec.streams, rec.peers, rec.loss)
        ]
        good = [r for r in mine if r.error is None]
        asked = sum(r.lines_expected for r in mine)
        ttft, late = _p50_ms([r.ttft_s for r in good]), _p50_ms([r.lateness_p50_s for r in good])
        direct_ttft, direct_late = _direct(rows, rec.streams)
        lines.append(
            {
                "path": rec.path,
                "streams": rec.streams,
                "peers": rec.peers,
                "loss": rec.loss,
                "msgs/100 lines": 100 * rec.relay_msgs / asked if asked else None,
                "peer msgs/100 lines": 100 * rec.peer_msgs / asked if asked else None,
                "B/line": rec.relay_bytes / asked if asked else None,
                "+TTFT p50 ms": _minus(ttft, direct_ttft),
                "+token delay p50 ms": _minus(late, direct_late),
                "lost": sum(r.lines_lost for r in mine),
                "lost, end came": sum(r.lines_lost for r in mine if r.reported_lost is not None),
                "reported": sum(r.reported_lost or 0 for r in mine),
                "no end": sum(1 for r in mine if r.reported_lost is None),
                "dup": sum(r.app_duplicates for r in mine),
                "errors": len(mine) - len(good),
                "relay CPU cores": rec.relay_tree_cpu_s / rec.wall_s if rec.wall_s else None,
                "relay RSS MB": rec.relay_tree_rss_peak_mb,
                "relay py RSS MB": rec.relay_rss_peak_mb,
                # Beyond the table: kept in summary.json.
                "requests": len(mine),
                "lines_asked": asked,
                "net_duplicates": sum(r.net_duplicates for r in mine),
                "dropped_by_node": rec.dropped,
                "ttft_p50_ms": ttft,
                "direct_ttft_p50_ms": direct_ttft,
                "lateness_p50_ms": late,
                "direct_lateness_p50_ms": direct_late,
                "relay_py_cpu_cores": rec.relay_cpu_s / rec.wall_s if rec.wall_s else None,
                "wall_s": rec.wall_s,
            }
        )
    return lines


def render(summary: Sequence[dict[str, Any]]) -> str:
    """The table as GitHub Markdown."""
    return md_table(pd.DataFrame(list(summary)), COLUMNS)
