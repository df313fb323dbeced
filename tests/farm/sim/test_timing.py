"""The timing model seen by clients: ground-truth durations and continuous-batching throughput.

These are the timing assertions issue 2 asks for (durations within 5 ms of the client's
wall clock; aggregate tokens/s rising and per-stream tokens/s falling with parallel streams).
"""

from __future__ import annotations

import json
import statistics
import time

import anyio
import httpx
import pytest

from farm.sim.child import SimServer

MODEL = "gemma3:4b"
TOLERANCE_NS = 5_000_000


def _timed_stream(http: httpx.Client, body: dict[str, object]) -> tuple[int, int, dict]:  # type: ignore[type-arg]
    """Stream one request; return (ns to first chunk, ns to final chunk, final chunk)."""
    sent = time.perf_counter_ns()
    first = 0
    with http.stream("POST", "/api/generate", json=body) as response:
        for line in response.iter_lines():
            if not first:
                first = time.perf_counter_ns() - sent
            chunk = json.loads(line)
            if chunk["done"]:
                return first, time.perf_counter_ns() - sent, chunk
    raise AssertionError("stream ended without a final chunk")


def _slack_medians(http: httpx.Client, prompt: str) -> dict[str, float]:
    """Median slack (ns) between client and server measurements over 15 cold runs.

    total: client send→final chunk minus `total_duration`; first: client send→first chunk
    minus load + prompt eval + eval for one-token answers; inner: `total_duration` minus the
    sum of the parts. Each server interval must nest inside the client's (slack >= 0).
    """
    slack: dict[str, list[int]] = {"total": [], "first": [], "inner": []}
    for tokens in (1,) * 9 + (12,) * 6:
        # keep_alive 0 unloads after each request, so every run includes a real load.
        body = {"model": MODEL, "prompt": prompt, "keep_alive": 0}
        body["options"] = {"num_predict": tokens}
        first, total, final = _timed_stream(http, body)
        parts = final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
        assert final["load_duration"] >= 60e6 * 0.8 and final["eval_count"] == tokens
        assert total >= final["total_duration"] >= parts
        slack["inner"].append(final["total_duration"] - parts)
        slack["total"].append(total - final["total_duration"])
        if tokens == 1:  # the only token is the first chunk: everything came before it
            slack["first"].append(first - parts)
    return {name: statistics.median(values) for name, values in slack.items()}


def test_final_chunk_durations_match_client_wall_clock() -> None:
    """The final chunk's durations match the client's wall clock within 5 ms (median).

    The median filters out process wake-up delays, which land before the handler starts and
    are no error of the simulator's clocks. On an oversubscribed machine (load average well
    above the core count) a whole series can still be skewed, so up to three series are
    measured; a simulator whose durations are really off fails all three.
    """
    flags = {"load_ms": 60, "prefill_ms_per_token": 1, "decode_ms": 10, "jitter": 0.2}
    prompt = " ".join(["word"] * 40)
    series = []
    with SimServer(**flags) as sim, httpx.Client(base_url=sim.url, trust_env=False) as http:
        for _ in range(3):
            medians = _slack_medians(http, prompt)
            series.append(medians)
            if max(medians.values()) < TOLERANCE_NS:
                break
    assert max(series[-1].values()) < TOLERANCE_NS, series


def _run_streams(url: str, count: int, tokens: int) -> tuple[float, list[float]]:
    """`count` concurrent streams; returns (aggregate tokens/s by wall clock, per-stream t/s)."""
    per_stream: list[float] = []

    async def one(client: httpx.AsyncClient, index: int) -> None:
        body = {"model": MODEL, "prompt": f"s{index}", "stream": False}
        body["options"] = {"num_predict": tokens}
        reply = (await client.post("/api/generate", json=body)).json()
        per_stream.append(reply["eval_count"] / reply["eval_duration"] * 1e9)

    async def main() -> float:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
            start = time.perf_counter()
            async with anyio.create_task_group() as group:
                for index in range(count):
                    group.start_soon(one, client, index)
            return count * tokens / (time.perf_counter() - start)

    return anyio.run(main), per_stream


@pytest.mark.parametrize("slowdown", [0.3], ids=["batch-slowdown-0.3"])
def test_more_streams_raise_aggregate_and_lower_per_stream_tokens_per_second(
    slowdown: float,
) -> None:
    with SimServer(num_parallel=4, load_ms=0, decode_ms=8, batch_slowdown=slowdown) as sim:
        _run_streams(sim.url, 1, 2)  # load the model first
        single_aggregate, single = _run_streams(sim.url, 1, 40)
        multi_aggregate, multi = _run_streams(sim.url, 4, 40)
    assert multi_aggregate > 1.5 * single_aggregate
    assert max(multi) < single[0]
