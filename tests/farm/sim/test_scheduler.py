"""Scheduler behaviour seen from real clients: slots, FIFO waiting, disconnects, reloads."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest

from farm.sim.testing import SimServer

from .conftest import FAST

MODEL = "gemma3:4b"


def _body(prompt: str, num_predict: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": num_predict}, **extra}


async def _stream(client: httpx.AsyncClient, prompt: str, n: int, marks: dict[str, float]) -> None:
    async with client.stream("POST", "/api/generate", json=_body(prompt, n)) as response:
        assert response.status_code == 200
        marks[f"{prompt}-headers"] = time.perf_counter()
        async for _line in response.aiter_lines():
            pass
        marks[f"{prompt}-end"] = time.perf_counter()


@pytest.mark.anyio
async def test_two_slots_three_streams_third_starts_when_one_ends() -> None:
    with SimServer(num_parallel=2, **{**FAST, "decode_ms": 10}) as sim:
        marks: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=sim.url, trust_env=False, timeout=30) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(_stream, client, "a", 30, marks)
                group.start_soon(_stream, client, "b", 30, marks)
                await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["models"][MODEL]["active"] == 2)
                )
                group.start_soon(_stream, client, "c", 5, marks)
                state = await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["models"][MODEL]["waiting"] == 1)
                )
                assert state["models"][MODEL]["active"] == 2
        first_end = min(marks["a-end"], marks["b-end"])
        assert marks["c-headers"] >= first_end
        assert max(marks["a-headers"], marks["b-headers"]) < first_end
        assert sim.state()["requests"]["finished"] == 3


def test_disconnect_frees_the_slot_for_the_next_request() -> None:
    with SimServer(num_parallel=1, **FAST) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as client:
            with client.stream("POST", "/api/generate", json=_body("long", 100_000)) as response:
                first = next(response.iter_lines())
                assert '"done":false' in first
            state = sim.wait_for(lambda s: s["requests"]["cancelled"] == 1)
            assert state["models"][MODEL]["active"] == 0
            reply = client.post("/api/generate", json=_body("next", 3, stream=False))
            assert reply.status_code == 200 and reply.json()["eval_count"] == 3
