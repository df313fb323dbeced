"""The proxy benchmark's goal figures and tables, from exact summaries."""

from __future__ import annotations

import pytest

from bench.proxy_goals import (
    ServerGoals,
    goal_table,
    p50_gap_ms,
    p99_ratio,
    server_goals,
    side_by_side,
)
from bench.proxy_streams import PathSummary


def summary(
    path: str, streams: int, p50: float, p99: float, cpu: float | None = None
) -> PathSummary:
    s = PathSummary(path, streams, 90, 0, p50, p99, 0.2, 1.5, 1800)
    s.extra["ttft_p99_round_median_ms"] = p99 - 5
    if cpu is not None:
        s.extra["cpu_ms_per_request"] = cpu
    return s


RUN = [
    summary("direct", 9, 20.0, 22.0),
    summary("uvicorn", 9, 21.5, 25.0, cpu=1.1),
    summary("nginx", 9, 20.4, 23.0, cpu=0.5),
    summary("direct", 64, 30.0, 40.0),
    summary("uvicorn", 64, 33.0, 56.9, cpu=0.9),
    summary("nginx", 64, 30.5, 45.4, cpu=0.4),
]


def test_p50_gap_is_proxy_added_minus_nginx_added() -> None:
    # proxy adds 1.59 ms, nginx 0.42 ms over direct: 1.17 ms more than nginx
    assert p50_gap_ms(21.59, 20.42, 20.0) == pytest.approx(1.17)


@pytest.mark.parametrize(
    ("proxy", "nginx", "direct", "expected"),
    [
        (56.9, 45.4, 40.0, 16.9 / 5.4),
        (50.0, 40.0, 40.0, None),
        (50.0, 39.0, 40.0, None),
        (39.0, 45.0, 40.0, None),
    ],
    ids=["ratio-of-added", "nginx-adds-nothing", "nginx-below-direct", "proxy-below-direct"],
)
def test_p99_ratio_divides_added_values_and_refuses_a_zero_base(
    proxy: float, nginx: float, direct: float, expected: float | None
) -> None:
    got = p99_ratio(proxy, nginx, direct)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_server_goals_take_both_levels_from_one_run() -> None:
    goals = server_goals(RUN, "uvicorn", rss_mb=65.0, upload_growth_mb=2.0)
    assert goals.p50_gap_ms == pytest.approx(1.1)
    assert goals.p99_ratio == pytest.approx(16.9 / 5.4)
    assert goals.met() == {"p50_gap": False, "p99_ratio": False, "rss": True, "upload_growth": True}


def test_a_goal_without_its_inputs_is_not_met_but_unknown() -> None:
    no_nginx = [s for s in RUN if s.path != "nginx"]
    goals = server_goals(no_nginx, "uvicorn")
    assert (goals.p50_gap_ms, goals.p99_ratio) == (None, None)
    assert set(goals.met().values()) == {None}
    assert goal_table([goals])[1].split()[1:] == ["n/a"] * 5


def test_goals_at_the_limits_are_met_and_memory_limits_are_strict() -> None:
    met = ServerGoals("x", 0.5, 2.0, 120.0, 29.9).met()
    assert met == {"p50_gap": True, "p99_ratio": True, "rss": False, "upload_growth": True}


def test_side_by_side_puts_direct_proxy_and_nginx_in_columns_per_level() -> None:
    lines = side_by_side(RUN)
    assert lines[0].split()[-3:] == ["direct", "uvicorn", "nginx"]
    rows = {
        (line.split()[0], " ".join(line.split()[1:-3])): line.split()[-3:] for line in lines[1:]
    }
    assert rows[("9", "+TTFT p50")] == ["-", "+1.50", "+0.40"]
    assert rows[("64", "+TTFT p99")] == ["-", "+16.90", "+5.40"]
    assert rows[("64", "CPU/request")] == ["-", "0.90", "0.40"]
    assert rows[("9", "errors/reqs")] == ["0/90"] * 3


def test_goal_table_says_met_or_not_per_server() -> None:
    table = goal_table([server_goals(RUN, "uvicorn", 65.0, 2.0)])
    assert table[1].startswith("uvicorn")
    assert "1.10 ms NOT MET" in table[1] and "3.13x NOT MET" in table[1]
    assert "65.00 MB MET" in table[1] and "2.00 MB MET" in table[1]
    # Beside the goals: the same ratio from round medians (here each 5 ms below the p99).
    assert table[1].endswith(f"{(51.9 - 35.0) / (40.4 - 35.0):.2f}x")
