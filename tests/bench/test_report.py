"""The report on a fixed set of rows: golden numbers worked out by hand, and every file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import harness
from bench.record import COLUMNS, Status
from bench.report import build_report, load_rows, write_rows
from bench.wire import ServerStats

from .rows import make_row

MS = 1_000_000


def fixed_rows() -> pd.DataFrame:
    """Two streams: one warm-up each, then three ok rows, one 503 and one cut stream.

    Window = [1001.0 (last warm-up end), 1002.0 (last end)] = 1 s.
    """
    a_stats = ServerStats(4, 120 * MS, 20, 40 * MS, 10 * MS, 170 * MS)  # srv_ttft 80 ms
    rows = [
        make_row(start_s=1000.0, ttft_s=0.5, gaps_s=(0.1, 0.1), end_s=1000.8, phase="warmup"),
        make_row(start_s=1000.0, ttft_s=0.5, gaps_s=(0.1,), end_s=1001.0, phase="warmup", user=1),
        make_row(start_s=1001.0, ttft_s=0.1, gaps_s=(0.1, 0.1, 0.1), end_s=1001.5, stats=a_stats),
        make_row(start_s=1001.0, ttft_s=0.2, gaps_s=(0.2, 0.2), end_s=1001.7, user=1),
        make_row(start_s=1001.5, ttft_s=0.3, gaps_s=(0.1,), end_s=1002.0),
        make_row(
            start_s=1001.7,
            ttft_s=None,
            end_s=1001.71,
            status=Status.HTTP_ERROR,
            http_status=503,
            error="HTTP 503: server busy",
            user=1,
        ),
        make_row(
            start_s=1001.71, ttft_s=0.09, gaps_s=(0.1,), end_s=1002.0, status=Status.CUT, user=1
        ),
    ]
    from dataclasses import asdict

    return pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    meta = {"config": {"slo_ttft_ms": 250, "slo_tpot_ms": 150}, "schema_version": 1}
    return build_report(fixed_rows(), pd.DataFrame(), meta, tmp_path_factory.mktemp("report"))


def test_summary_golden_numbers(built) -> None:
    row = built.summary.iloc[0]
    assert (row["target"], row["streams"]) == ("direct", 2)
    assert (row["requests"], row["ok"], row["errors"], row["cut"]) == (5, 3, 2, 1)
    assert row["warmup_excluded"] == 2
    assert row["window_s"] == pytest.approx(1.0)
    assert row["req_per_s"] == pytest.approx(3.0)
    # tokens arriving in [1001, 1002]: 4 + 3 + 2 + 2 (the cut stream's tokens did arrive)
    assert row["agg_tok_s"] == pytest.approx(11.0)
    assert row["achieved_streams"] == pytest.approx(2.0)  # 0.5 + 0.7 + 0.5 + 0.01 + 0.29
    assert row["ttft_ms_p50"] == pytest.approx(200.0)
    assert row["ttft_ms_mean"] == pytest.approx(200.0)
    assert row["tpot_ms_p50"] == pytest.approx(100.0)  # tpots 100, 200, 100
    assert row["itl_ms_p50"] == pytest.approx(100.0)  # gaps 100,100,100,200,200,100
    assert row["stream_tok_s_p50"] == pytest.approx(10.0)
    # SLO ttft ≤ 250 ms and tpot ≤ 150 ms: only the first ok row is good
    assert row["goodput_req_s"] == pytest.approx(1.0)
    assert row["good_fraction"] == pytest.approx(0.2)  # failures stay in the denominator


def test_decomposition_golden_numbers(built) -> None:
    row = built.decomposition.iloc[0]
    assert row["srv_load_ms"] == pytest.approx(10.0)
    assert row["srv_prefill_ms"] == pytest.approx(40.0)
    assert row["srv_first_decode_ms"] == pytest.approx(30.0)
    assert row["transport_ttft_ms"] == pytest.approx(20.0)  # 100 ms client − 80 ms server


def test_errors_are_counted_with_their_first_message(built) -> None:
    errors = built.errors.set_index("status")
    assert errors.loc["http_error", "count"] == 1
    assert errors.loc["http_error", "first_error"] == "HTTP 503: server busy"
    assert errors.loc["cut", "count"] == 1


def test_every_report_file_is_written(built) -> None:
    out = built.out
    for name in ("rows.parquet", "rows.csv", "summary.csv", "decomposition.csv", "errors.csv"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "plots").glob("*.png"))) >= 5
    md = (out / "report.md").read_text()
    assert "| direct | 2 |" in md and "## TTFT decomposition" in md and "tpot" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert 'src="http' not in html and "<link" not in html  # self-contained


def test_rows_survive_parquet_and_csv(tmp_path: Path) -> None:
    rows = fixed_rows()
    write_rows(rows, tmp_path)
    back = load_rows(tmp_path)
    assert list(back["token_gaps_s"].iloc[2]) == pytest.approx([0.1, 0.1, 0.1])
    csv = pd.read_csv(tmp_path / "rows.csv")
    assert csv["token_gaps_s"].iloc[2].startswith("[0.1")
    assert (csv["schema_version"] == 1).all()


def test_busy_worker_gets_the_bold_workers_advice(tmp_path: Path) -> None:
    health = pd.DataFrame(
        {
            "run": ["direct-s2"] * 3,
            "worker_id": ["w0"] * 3,
            "t_unix_s": [1.0, 2.0, 3.0],
            "cpu_pct": [20.0, 97.0, 95.0],
            "hub_lag_max_ms": [1.0, 12.0, 14.0],
            "in_flight": [2, 2, 2],
        }
    )
    meta = {"config": {}, "schema_version": 1}
    report = build_report(fixed_rows(), health, meta, tmp_path)
    (check,) = report.checks
    assert check.client_bound and check.cpu_pct_max == pytest.approx(97.0)
    md = (tmp_path / "report.md").read_text()
    assert "**direct×2: the load generator is the bottleneck" in md
    assert "--workers 2" in md
    assert "<strong>direct×2: the load generator" in (tmp_path / "report.html").read_text()


def test_quiet_worker_passes_the_self_check() -> None:
    health = pd.DataFrame(
        {"worker_id": ["w0"] * 3, "cpu_pct": [5.0, 6.0, 7.0], "hub_lag_max_ms": [1.0, 2.0, 1.0]}
    )
    check = harness.check("proxy", 9, health, 8.95, 0.1, check_concurrency=True)
    assert not check.client_bound and check.reasons == ()
    short = harness.check("proxy", 9, health, 6.0, 0.1, check_concurrency=True)
    assert short.client_bound and "6.00 of 9" in short.reasons[0]


def test_a_starved_but_idle_worker_blames_the_machine_not_the_worker_count() -> None:
    health = pd.DataFrame(
        {"worker_id": ["w0"] * 4, "cpu_pct": [5.0] * 4, "hub_lag_max_ms": [20.0, 30.0, 25.0, 2.0]}
    )
    health["hub_lag_p50_ms"] = [4.0, 5.0, 6.0, 0.5]
    check = harness.check("proxy", 9, health, 9.0, 0.1, check_concurrency=True)
    assert check.client_bound
    assert "machine is busy" in check.advice and "--workers" not in check.advice


def test_an_overloaded_host_is_reported_as_busy() -> None:
    health = pd.DataFrame(
        {
            "worker_id": ["w0"] * 3,
            "cpu_pct": [5.0] * 3,
            "hub_lag_p50_ms": [0.5] * 3,
            "hub_lag_max_ms": [3.0] * 3,
            "loadavg_1m": [5.5, 6.0, 6.0],
            "cpu_count": [2] * 3,
        }
    )
    check = harness.check("direct", 9, health, 9.0, 0.1, check_concurrency=True)
    assert check.client_bound and "load average 6.0 on 2 CPUs" in check.reasons[0]
    assert "machine is busy" in check.advice


def test_paths_are_paired_with_direct_on_prompt_ids() -> None:
    from dataclasses import asdict

    from bench import summary

    rows = [
        make_row(start_s=10.0, ttft_s=0.10, gaps_s=(0.1,), end_s=10.3, index=0),
        make_row(start_s=10.0, ttft_s=0.20, gaps_s=(0.1,), end_s=10.4, index=1),
        make_row(start_s=20.0, ttft_s=0.13, gaps_s=(0.2,), end_s=20.4, index=0, target="proxy"),
        make_row(start_s=20.0, ttft_s=0.21, gaps_s=(0.2,), end_s=20.5, index=1, target="proxy"),
        make_row(start_s=20.0, ttft_s=0.50, gaps_s=(0.1,), end_s=20.7, index=7, target="proxy"),
    ]
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    (row,) = summary.paired(frame).to_dict("records")
    assert (row["target"], row["pairs"]) == ("proxy", 2)  # prompt p7 has no direct partner
    assert row["d_ttft_ms_p50"] == pytest.approx(20.0)  # differences 30 and 10 ms
    assert row["tok_s_ratio_p50"] == pytest.approx(0.5)
