"""Build `RequestRecord`s from exact synthetic timestamps through the real StreamObserver."""

from __future__ import annotations

from bench.observe import RequestLabels, StreamObserver
from bench.record import RequestRecord, Status
from bench.wire import Chunk, ServerStats

S = 1_000_000_000  # ns per second


def ns(seconds: float) -> int:
    """Seconds → integer ns, rounded (so 1001.1 s is exact)."""
    return round(seconds * S)


def make_row(
    *,
    start_s: float,
    ttft_s: float | None,
    gaps_s: tuple[float, ...] = (),
    end_s: float,
    status: Status = Status.OK,
    stats: ServerStats | None = None,
    target: str = "direct",
    streams: int = 2,
    phase: str = "measure",
    http_status: int | None = 200,
    error: str | None = None,
    user: int = 0,
    index: int = 0,
) -> RequestRecord:
    """One row: send at `start_s` (wall = monotonic here), tokens at start+ttft then each gap."""
    labels = RequestLabels("run", target, streams, "w0", user, index, phase, f"p{index}", "short")
    obs = StreamObserver(labels, ns(start_s), ns(start_s), ns(start_s))
    if http_status is not None:
        obs.on_headers(ns(start_s + (ttft_s or 0.0)), http_status)
    if ttft_s is not None:
        t = start_s + ttft_s
        obs.on_chunk(ns(t), Chunk(content="a"), 40)
        for gap in gaps_s:
            t += gap
            obs.on_chunk(ns(t), Chunk(content="b"), 40)
    if status == Status.OK:
        obs.on_chunk(ns(end_s), Chunk(done=True, done_reason="length", stats=stats), 200)
    return obs.finish(ns(end_s), status, error)
