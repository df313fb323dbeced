"""The engine benchmark's arithmetic, fed exact timestamps (no engine runs here)."""

from __future__ import annotations

import math

from bench.engine_bench import EngineBenchSettings, StreamRow, summarise, table
from farm.settings import load


def _row(round_: int, start: float, first: float, end: float, tokens: int) -> StreamRow:
    return StreamRow("direct", 2, round_, start, first, end, tokens, 25)


def test_summary_takes_per_stream_and_aggregate_rates_from_the_timestamps() -> None:
    rows = [
        _row(0, 0.0, 0.1, 2.0, 64),  # 32 tok/s
        _row(0, 0.0, 0.2, 4.0, 64),  # 16 tok/s; the round's wall is 4 s: 128 / 4 = 32
        _row(1, 10.0, 10.3, 12.0, 64),  # 32 tok/s
        _row(1, 10.0, 10.4, 12.0, 64),  # 32 tok/s; wall 2 s: 64 tok/s
        StreamRow("direct", 2, 1, 10.0, None, 10.5, 0, 0, error="ClientError: boom"),
    ]
    summary = summarise(rows, peak_rss_bytes=600_000_000)
    assert math.isclose(summary.ttft_p50_ms, 250.0)
    assert math.isclose(summary.per_stream_tok_s, 32.0)
    assert math.isclose(summary.aggregate_tok_s, 48.0)  # median of 32 and 64
    assert math.isclose(summary.wall_s, 3.0)
    assert summary.peak_rss_mb == 600 and summary.errors == 1
    assert table([summary])[2] == (
        "| direct | 2 (1 errors) | 250 ms | 32.0 | 48.0 | 3.00 s | 600 MB |"
    )


def test_the_default_levels_are_the_reference_table_s() -> None:
    settings = load(EngineBenchSettings, [], {}).settings
    assert settings.streams == (1, 2, 4, 8) and settings.max_tokens == 64
    assert load(EngineBenchSettings, ["--streams", "4,8"], {}).settings.streams == (4, 8)
