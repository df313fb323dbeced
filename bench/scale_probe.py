"""One measured stream of the relay-at-scale benchmark: `StreamRow`, direct or relayed.

Every line's *lateness* is its arrival minus its `created_at` (when the simulator made it),
so the delay a path adds to each token is measured per line, not inferred from gaps that
batching makes bimodal. `created_at` is wall-clock time written by another process on this
machine; arrivals are `perf_counter` readings shifted onto the wall clock once per stream.

Lines lost count what the peer was owed and never got, whether or not it could tell:
`lines_expected - lines`. `reported_lost` is what the peer itself could report: its end
frame's `last_seq` against the lines it received (None when no end frame came).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.quantiles import quantile
from farm.common.rfc3339 import NS_PER_S, parse_ns
from relay.client import RelayClient, StreamResult
from relay.errors import ClientError

MODEL = "gemma3:4b"


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One stream as measured (times in seconds; lateness of each line in seconds)."""

    path: str  # "direct" (HTTP to the proxy), or the relay path: "seed" or "fast"
    streams: int
    peers: int
    loss: float
    round: int
    peer: int
    ttft_s: float | None
    lateness_p50_s: float | None
    lateness_p90_s: float | None
    total_s: float | None
    lines_expected: int
    lines: int  # distinct lines received
    lines_lost: int
    reported_lost: int | None
    app_duplicates: int  # lines handed to the caller twice or out of order (must be 0)
    net_duplicates: int  # copies the client received and dropped
    dm_bytes: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Label:
    """Where a stream belongs: its path and scenario, its round and which peer ran it."""

    path: str
    streams: int
    peers: int
    loss: float
    round: int
    peer: int


def body(prompt: str, max_tokens: int) -> dict[str, Any]:
    """A streamed generate whose answer is exactly `max_tokens` tokens (the simulator runs
    with an answer length it never reaches first)."""
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": max_tokens}}


def _lateness(lines: list[tuple[str, float]], wall_offset_s: float) -> list[float]:
    """Each line's arrival (perf_counter + offset) minus its `created_at`, in seconds."""
    late = []
    for text, arrival_s in lines:
        try:
            created = parse_ns(json.loads(text).get("created_at"))
        except (ValueError, AttributeError):
            created = None
        if created is not None:
            late.append(arrival_s + wall_offset_s - created / NS_PER_S)
    return late


def _wall_offset_s() -> float:
    return time.time() - time.perf_counter()


def _p(values: list[float], q: float) -> float | None:
    value = quantile(values, q)
    return None if math.isnan(value) else value


async def direct_one(
    http: httpx.AsyncClient, url: str, request: dict[str, Any], expected: int, label: Label
) -> StreamRow:
    """One streamed generate straight to the proxy, each line stamped as it arrives."""
    offset = _wall_offset_s()
    sent = time.perf_counter()
    got: list[tuple[str, float]] = []
    error = None
    try:
        async with http.stream("POST", f"{url}/api/generate", json=request) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    got.append((line, time.perf_counter()))
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    late = _lateness(got, offset)
    return StreamRow(
        label.path, label.streams, label.peers, label.loss, label.round, label.peer,
        got[0][1] - sent if got else None, _p(late, 0.5), _p(late, 0.9),
        got[-1][1] - sent if got else None, expected, len(got), expected - len(got),
        None, 0, 0, 0, error,
    )  # fmt: skip


async def relayed_one(
    client: RelayClient, request: dict[str, Any], expected: int, label: Label
) -> StreamRow:
    """One streamed generate through the relay, on whichever path `client` speaks."""
    offset = _wall_offset_s()
    stream = client.stream(path="/api/generate", json=request)
    got: list[tuple[str, float]] = []
    app_duplicates = 0
    last_seq = 0
    error = None
    try:
        async with stream:
            async for line in stream:
                app_duplicates += line.seq != last_seq + 1
                last_seq = line.seq
                got.append((line.line, line.arrival_s))
    except ClientError as exc:
        error = f"{type(exc).__name__}: {exc}"
    result = stream.result
    if error is not None and result.end is not None and result.end.error:
        error += f" (the relay's end: {result.end.error})"  # a gap hides why it ended
    received = max(len(got), _distinct_lines(result))
    late = _lateness(got, offset)
    first = got[0][1] - result.sent_s if got else None
    return StreamRow(
        label.path, label.streams, label.peers, label.loss, label.round, label.peer,
        first, _p(late, 0.5), _p(late, 0.9), result.total_s, expected, received,
        expected - received,
        None if result.end is None else result.end.last_seq - received,
        app_duplicates, result.duplicates, result.dm_bytes, error,
    )  # fmt: skip


def _distinct_lines(result: StreamResult) -> int:
    """Lines that reached the client, each counted once, whether or not a gap held them back
    from the caller (a seed-path stream yields nothing past its first missing line)."""
    return sum(frame.lines for frame in result.frames) - result.duplicates
