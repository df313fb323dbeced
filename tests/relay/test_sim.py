"""The relay against the Ollama simulator: real generate streams, real slots, real cancellation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from farm.sim.child import SimServer
from tests.relay.harness import config_for, running_relay

pytestmark = pytest.mark.anyio
MODEL = "gemma3:4b"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(num_parallel=2, load_ms=0, decode_ms=2, seed=7) as server:
        yield server


async def test_streamed_generate_through_the_relay_matches_direct(sim: SimServer) -> None:
    body = {"model": MODEL, "prompt": "Say hello", "stream": True, "options": {"num_predict": 40}}
    async with running_relay(config_for(sim.url)) as h:
        async with h.client.stream(path="/api/generate", json=body) as s:
            lines = await s.lines()
    chunks = [json.loads(line.line) for line in lines]
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    assert chunks[-1]["done"] is True and all(c["done"] is False for c in chunks[:-1])
    assert chunks[-1]["eval_count"] == len(chunks) - 1
    end = s.result.end
    assert end is not None and end.ok and end.done_seen and end.last_seq == len(lines)


async def test_non_stream_tags_are_relayed_as_json(sim: SimServer) -> None:
    async with running_relay(config_for(sim.url)) as h:
        response = await h.client.request(path="/api/tags")
    assert response.ok and response.status == 200
    assert MODEL in [m["name"] for m in response.json["models"]]


async def test_relay_cancel_frees_the_simulator_slot(sim: SimServer) -> None:
    before = sim.state()["requests"]["cancelled"]
    body = {"model": MODEL, "prompt": "go on", "options": {"num_predict": 100_000}}
    async with running_relay(config_for(sim.url)) as h:
        async with h.client.stream(path="/api/generate", json=body) as s:
            async for _line in s:
                break
        state = await asyncio.to_thread(
            sim.wait_for,
            lambda st: (
                st["models"][MODEL]["active"] == 0 and st["requests"]["cancelled"] == before + 1
            ),
            10.0,
        )
    assert state["models"][MODEL]["waiting"] == 0


async def test_openai_sse_stream_is_relayed_as_lines_with_done(sim: SimServer) -> None:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with running_relay(config_for(sim.url)) as h:
        async with h.client.stream(path="/v1/chat/completions", json=body) as s:
            lines = await s.lines()
    assert lines[-1].line == "data: [DONE]"
    chunks = [json.loads(line.line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] is not None
    assert s.result.begin is not None
    assert s.result.begin.headers["content-type"].startswith("text/event-stream")
    assert s.result.end is not None and s.result.end.done_seen and s.result.end.ok
