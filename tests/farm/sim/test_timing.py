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

from farm.sim.testing import SimServer

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


def test_final_chunk_durations_match_client_wall_clock() -> None:
    """Each server interval nests inside the client's; the median slack is under 5 ms.

    The median (of 15 runs) filters out process wake-up delays on a shared, oversubscribed
    machine, which land before the handler starts and so are no error of the simulator's clock.
    """
    flags = {"load_ms": 60, "prefill_ms_per_token": 1, "decode_ms": 10, "jitter": 0.2}
    prompt = " ".join(["word"] * 40)
    total_slack: list[int] = []
    first_slack: list[int] = []
    inner_slack: list[int] = []
    with SimServer(**flags) as sim, httpx.Client(base_url=sim.url, trust_env=False) as http:
        for tokens in (1,) * 9 + (12,) * 6:
            # keep_alive 0 unloads after each request, so every run includes a real load.
            body = {"model": MODEL, "prompt": prompt, "keep_alive": 0}
            body["options"] = {"num_predict": tokens}
            first, total, final = _timed_stream(http, body)
            parts = final["load_duration"] + final["prompt_eval_duration"]
            parts += final["eval_duration"]
            assert final["load_duration"] >= 60e6 * 0.8 and final["eval_count"] == tokens
            assert 0 <= total - final["total_duration"]
            assert 0 <= final["total_duration"] - parts
            inner_slack.append(final["total_duration"] - parts)
            total_slack.append(total - final["total_duration"])
            if tokens == 1:  # the only token is the first chunk: everything came before it
                first_slack.append(first - parts)
    assert statistics.median(inner_slack) < TOLERANCE_NS, inner_slack
    assert statistics.median(total_slack) < TOLERANCE_NS, total_slack
    assert statistics.median(first_slack) < TOLERANCE_NS, first_slack


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
