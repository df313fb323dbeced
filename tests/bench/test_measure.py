"""Pure measurement functions, fed exact synthetic timestamps."""

from __future__ import annotations

import pytest

from bench import measure

S = 1_000_000_000


def test_gaps_are_differences_of_consecutive_arrivals() -> None:
    assert measure.gaps_s([0, 10_000_000, 25_000_000, 26_000_000]) == (0.010, 0.015, 0.001)


def test_tpot_spreads_first_to_last_over_tokens_minus_one() -> None:
    assert measure.tpot_s(1 * S, 1 * S + 300_000_000, 4) == pytest.approx(0.1)


@pytest.mark.parametrize("n", [0, 1], ids=["no-tokens", "one-token"])
def test_tpot_is_undefined_below_two_tokens(n: int) -> None:
    assert measure.tpot_s(0, S, n) is None


def test_interval_with_a_missing_stamp_is_none() -> None:
    assert measure.interval_s(5, None) is None
    assert measure.interval_s(S, 3 * S) == 2.0


@pytest.mark.parametrize(
    ("chunks", "srv", "flag"),
    [(100, 100, False), (95, 100, False), (94, 100, True), (3, None, False)],
    ids=["equal", "at-5pct", "over-5pct", "no-server-count"],
)
def test_token_mismatch_flags_more_than_five_percent(
    chunks: int, srv: int | None, flag: bool
) -> None:
    assert measure.tokens_mismatch(chunks, srv) is flag


def test_decompose_splits_ttft_by_ollama_durations() -> None:
    d = measure.decompose(
        0.100,
        load_duration_ns=10_000_000,
        prompt_eval_duration_ns=40_000_000,
        eval_duration_ns=120_000_000,
        eval_count=4,
        total_duration_ns=200_000_000,
    )
    assert d.srv_load_s == pytest.approx(0.010)
    assert d.srv_wait_s == pytest.approx(0.030)  # 200 - 10 - 40 - 120
    assert d.srv_prefill_s == pytest.approx(0.040)
    assert d.srv_first_decode_s == pytest.approx(0.030)
    assert d.srv_ttft_s == pytest.approx(0.110)
    assert d.transport_ttft_s == pytest.approx(-0.010)


def test_window_starts_after_the_last_warmup_request() -> None:
    assert measure.steady_window([0.0, 1.0, 2.0], [1.5, 3.0, 4.0], [1.5, 1.2]) == (1.5, 4.0)
    assert measure.steady_window([0.0, 1.0], [1.5, 3.0], []) == (0.0, 3.0)


def test_tokens_are_counted_by_arrival_inside_the_window() -> None:
    assert measure.count_in_window([0.5, 1.0, 1.5, 2.0, 2.5], 1.0, 2.0) == 3


def test_peak_is_the_busiest_whole_second() -> None:
    times = [10.1, 10.2, 11.1, 11.2, 11.3, 12.5]
    assert measure.peak_per_s(times, 10.0, 12.0) == 3.0


def test_mean_concurrency_is_time_weighted_and_clipped_to_the_window() -> None:
    intervals = [(0.0, 2.0), (1.0, 3.0), (2.5, 10.0)]
    # in [1, 3]: first 1 s, second 2 s, third 0.5 s → 3.5 s / 2 s
    assert measure.mean_concurrency(intervals, 1.0, 3.0) == pytest.approx(1.75)


@pytest.mark.parametrize(
    ("ttft", "tpot", "good"),
    [(0.1, 0.01, True), (0.3, 0.01, False), (0.1, 0.05, False), (0.1, None, True)],
    ids=["meets-both", "slow-ttft", "slow-tpot", "one-token"],
)
def test_goodput_judges_each_slo(ttft: float, tpot: float | None, good: bool) -> None:
    assert measure.is_good(ttft, tpot, 0.2, 0.02) is good
