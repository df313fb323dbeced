"""The stream observer: one row from exact event stamps, including the awkward streams."""

from __future__ import annotations

import json

import pytest

from bench.observe import RequestLabels, StreamObserver
from bench.record import RequestRecord, Status
from bench.wire import Chunk, ServerStats

MS = 1_000_000
LABELS = RequestLabels("r", "proxy", 9, "w0", 3, 5, "measure", "short-1-0001", "short")


def observer(t_intended: int = 0, t_send: int = 0) -> StreamObserver:
    return StreamObserver(LABELS, t_intended, t_send, 1_700_000_000 * 10**9)


def test_full_stream_gives_every_metric() -> None:
    obs = observer(t_intended=-2 * MS)
    obs.on_headers(100 * MS, 200)
    for k, t in enumerate([100, 120, 140, 160]):
        obs.on_chunk(t * MS, Chunk(content=f"t{k}"), 50)
    stats = ServerStats(4, 60 * MS, 26, 40 * MS, 5 * MS, 95 * MS)
    obs.on_chunk(161 * MS, Chunk(done=True, done_reason="length", stats=stats), 300)
    row = obs.finish(162 * MS, *obs.end_status())
    assert row.status == "ok" and row.error is None
    assert row.ttft_s == pytest.approx(0.100) and row.ttfb_s == pytest.approx(0.100)
    assert row.ttft_sched_s == pytest.approx(0.102) and row.send_lag_s == pytest.approx(0.002)
    assert row.token_gaps_s == pytest.approx((0.02, 0.02, 0.02))
    assert row.tpot_s == pytest.approx(0.020) and row.stream_tok_s == pytest.approx(50.0)
    assert row.e2e_s == pytest.approx(0.162) and row.e2e_tok_s == pytest.approx(4 / 0.162)
    assert (row.n_chunks, row.n_tokens_srv, row.bytes_received) == (4, 4, 500)
    # srv_ttft = load 5 + wait (95-5-40-60=-10 → 0) + prefill 40 + one decode step 15 = 60 ms
    assert row.srv_ttft_s == pytest.approx(0.060)
    assert row.transport_ttft_s == pytest.approx(0.040)
    assert row.srv_decode_tok_s == pytest.approx(4 / 0.060)
    assert (row.target, row.streams, row.user_index, row.request_index) == ("proxy", 9, 3, 5)


def test_empty_first_chunk_does_not_start_ttft() -> None:
    obs = observer()
    obs.on_headers(10 * MS, 200)
    obs.on_chunk(10 * MS, Chunk(content=""), 40)
    obs.on_chunk(30 * MS, Chunk(content="x"), 40)
    obs.on_chunk(31 * MS, Chunk(done=True), 40)
    row = obs.finish(31 * MS, *obs.end_status())
    assert row.ttft_s == pytest.approx(0.030) and row.ttfb_s == pytest.approx(0.010)
    assert row.n_chunks == 1


def test_thinking_counts_for_ttft_but_not_for_ttfo() -> None:
    obs = observer()
    obs.on_chunk(10 * MS, Chunk(thinking="hmm"), 40)
    obs.on_chunk(50 * MS, Chunk(content="A"), 40)
    row = obs.finish(60 * MS, Status.OK)
    assert row.ttft_s == pytest.approx(0.010) and row.ttfo_s == pytest.approx(0.050)


def test_stream_without_done_is_cut_and_keeps_its_tokens() -> None:
    obs = observer()
    obs.on_headers(5 * MS, 200)
    obs.on_chunk(5 * MS, Chunk(content="a"), 40)
    obs.on_chunk(25 * MS, Chunk(content="b"), 40)
    status, error = obs.end_status()
    row = obs.finish(30 * MS, status, error)
    assert row.status == "cut" and row.is_error and "done" in (row.error or "")
    assert row.n_chunks == 2 and row.n_tokens_srv is None and row.total_duration_ns is None


def test_in_band_error_is_a_stream_error() -> None:
    obs = observer()
    obs.on_headers(5 * MS, 200)
    obs.on_chunk(5 * MS, Chunk(content="a"), 40)
    obs.on_chunk(9 * MS, Chunk(error="runner died"), 40)
    row = obs.finish(9 * MS, *obs.end_status())
    assert (row.status, row.error) == ("stream_error", "runner died")


def test_http_error_keeps_the_status_code() -> None:
    obs = observer()
    obs.on_headers(2 * MS, 503)
    obs.error = "HTTP 503: server busy"
    row = obs.finish(2 * MS, *obs.end_status())
    assert (row.status, row.http_status, row.error) == ("http_error", 503, "HTTP 503: server busy")


def test_row_round_trips_through_json() -> None:
    obs = observer()
    obs.on_chunk(5 * MS, Chunk(content="a"), 40)
    obs.on_chunk(7 * MS, Chunk(content="b"), 40)
    row = obs.finish(9 * MS, Status.INCOMPLETE)
    assert RequestRecord.from_dict(json.loads(row.to_json())) == row
    assert not row.is_error


def test_first_token_lag_compares_arrival_with_created_at() -> None:
    obs = StreamObserver(LABELS, 0, 0, 1_000 * 10**9)  # sent at unix 1000 s
    obs.on_chunk(30 * MS, Chunk(content="a", created_at="1970-01-01T00:16:40.028Z"), 40)
    row = obs.finish(40 * MS, Status.OK)
    assert row.first_token_lag_s == pytest.approx(0.002)
