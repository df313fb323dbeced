"""The demo streams one answer live before its benchmark, so a newcomer sees the model's text;
a backend that fails is reported in that text and never stops the demo."""

from __future__ import annotations

from bench.demo import SAMPLE_PROMPT, stream_sample
from farm.common.net import free_port
from farm.sim.child import SimServer


def test_the_sample_arrives_piece_by_piece_after_its_prompt() -> None:
    pieces: list[str] = []
    with SimServer(load_ms=0, decode_ms=1) as sim:
        stream_sample(sim.url, "gemma3:4b", pieces.append)
    assert pieces[0].endswith(SAMPLE_PROMPT)
    words = pieces[1:-1]
    assert len(words) > 5 and all(words)
    assert pieces[-1].startswith("\n(TTFT ") and "through the proxy" in pieces[-1]


def test_an_unreachable_backend_is_reported_in_the_text() -> None:
    pieces: list[str] = []
    stream_sample(f"http://127.0.0.1:{free_port()}", "gemma3:4b", pieces.append)
    assert any("[sample failed:" in p for p in pieces)
    assert pieces[-1].startswith("\n(no tokens")
