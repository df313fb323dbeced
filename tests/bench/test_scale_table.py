"""The relay-at-scale table from exact rows and node counts (pure)."""

from __future__ import annotations

import pytest

from bench.scale_probe import StreamRow
from bench.scale_rig import ScenarioRecord
from bench.scale_table import COLUMNS, render, summarize


def _row(
    path: str, ttft_s: float | None, late_s: float | None, lines: int, **kw: object
) -> StreamRow:
    values: dict[str, object] = {
        "path": path, "streams": 2, "peers": 1, "loss": 0.0 if path == "direct" else 0.05,
        "round": 0, "peer": 0, "ttft_s": ttft_s, "lateness_p50_s": late_s,
        "lateness_p90_s": late_s, "total_s": 1.0, "lines_expected": 10, "lines": lines,
        "lines_lost": 10 - lines, "reported_lost": 10 - lines, "app_duplicates": 0,
        "net_duplicates": 0, "dm_bytes": 0, "error": None,
    }  # fmt: skip
    values.update(kw)
    return StreamRow(**values)  # type: ignore[arg-type]


RECORD = ScenarioRecord(
    path="seed", streams=2, peers=1, loss=0.05, wall_s=2.0, relay_msgs=5, relay_bytes=4000,
    peer_msgs=2, peer_bytes=300, dropped=1, relay_cpu_s=0.5, relay_tree_cpu_s=1.0,
    relay_rss_peak_mb=50.0, relay_tree_rss_peak_mb=120.0,
)  # fmt: skip
ROWS = [
    _row("direct", 0.010, 0.001, 10, reported_lost=None),
    _row("direct", 0.030, 0.003, 10, reported_lost=None),
    _row("seed", 0.050, 0.041, 10),
    _row("seed", 0.070, 0.043, 7, error="StreamGapError: missing seq 8, 9, 10"),
    _row("seed", None, None, 0, reported_lost=None, error="ClientTimeout"),
]


@pytest.fixture
def line() -> dict[str, object]:
    (only,) = summarize(ROWS, [RECORD])
    return only


def test_counts_are_per_line_asked_for(line: dict[str, object]) -> None:
    # 3 relayed streams of 10 lines were asked for: 30 lines.
    assert line["msgs/100 lines"] == pytest.approx(100 * 5 / 30)
    assert line["peer msgs/100 lines"] == pytest.approx(100 * 2 / 30)
    assert line["B/line"] == pytest.approx(4000 / 30)


def test_added_times_are_relayed_minus_direct_p50_of_good_streams(line: dict[str, object]) -> None:
    assert line["+TTFT p50 ms"] == pytest.approx(50 - 20)
    assert line["+token delay p50 ms"] == pytest.approx(41 - 2)


def test_lost_counts_every_line_not_received_and_reported_what_peers_could_tell(
    line: dict[str, object],
) -> None:
    assert (line["lost"], line["reported"], line["errors"]) == (13, 3, 2)
    assert (line["lost, end came"], line["no end"]) == (3, 1)


def test_relay_cpu_is_in_cores_of_its_process_tree(line: dict[str, object]) -> None:
    assert line["relay CPU cores"] == pytest.approx(0.5)
    assert line["relay_py_cpu_cores"] == pytest.approx(0.25)
    assert (line["relay RSS MB"], line["relay py RSS MB"]) == (120.0, 50.0)


def test_the_rendered_table_has_every_column() -> None:
    header = render(summarize(ROWS, [RECORD])).splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == COLUMNS
