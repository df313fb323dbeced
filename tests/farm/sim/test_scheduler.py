"""Scheduler behaviour seen from real clients: slots, FIFO waiting, disconnects, reloads."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import pytest

from farm.sim.child import SimServer

from .conftest import FAST

MODEL = "gemma3:4b"


def _body(prompt: str, num_predict: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": num_predict}, **extra}


async def _stream(client: httpx.AsyncClient, prompt: str, n: int, marks: dict[str, Any]) -> None:
    async with client.stream("POST", "/api/generate", json=_body(prompt, n)) as response:
        assert response.status_code == 200
        marks[f"{prompt}-headers"] = time.perf_counter()
        async for line in response.aiter_lines():
            marks[f"{prompt}-final"] = json.loads(line)
        marks[f"{prompt}-end"] = time.perf_counter()


@pytest.mark.anyio
async def test_two_slots_three_streams_third_starts_when_one_ends() -> None:
    with SimServer(num_parallel=2, **{**FAST, "decode_ms": 10}) as sim:
        marks: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=sim.url, trust_env=False, timeout=30) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(_stream, client, "a", 30, marks)
                group.start_soon(_stream, client, "b", 30, marks)
                await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["models"][MODEL]["active"] == 2)
                )
                marks["c-start"] = time.perf_counter()
                group.start_soon(_stream, client, "c", 5, marks)
                state = await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["models"][MODEL]["waiting"] == 1)
                )
                assert state["models"][MODEL]["active"] == 2
        first_end = min(marks["a-end"], marks["b-end"])
        assert marks["c-headers"] >= first_end
        assert max(marks["a-headers"], marks["b-headers"]) < first_end
        # The slot wait shows only in total_duration, not in load_duration (as in Ollama).
        final = marks["c-final"]
        parts = final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
        waited_s = (final["total_duration"] - parts) / 1e9
        assert 0.2 < waited_s <= first_end - marks["c-start"]  # a and b need ~0.35 s
        assert final["load_duration"] < 0.005e9
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


BUSY = {"error": "server busy, please try again.  maximum pending requests exceeded"}


@pytest.mark.anyio
async def test_scheduler_queue_overflow_during_a_load_answers_503() -> None:
    with SimServer(max_queue=2, **{**FAST, "load_ms": 800}) as sim:
        async with httpx.AsyncClient(base_url=sim.url, trust_env=False, timeout=30) as client:
            statuses: list[int] = []

            async def one(prompt: str) -> None:
                reply = await client.post("/api/generate", json=_body(prompt, 2, stream=False))
                statuses.append(reply.status_code)

            async with anyio.create_task_group() as group:
                group.start_soon(one, "loader")
                await _poll(client, lambda: _ps_count(client), 1)
                group.start_soon(one, "q1")
                group.start_soon(one, "q2")
                await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["scheduler_queue"] == 2)
                )
                overflow = await client.post("/api/generate", json=_body("q3", 2, stream=False))
                assert overflow.status_code == 503
                assert overflow.json() == BUSY
                assert "retry-after" not in overflow.headers
            assert statuses == [200, 200, 200]
            # Once warm, requests pile up on the slot semaphore: no 503 (ollama#7758).
            async with anyio.create_task_group() as group:
                for index in range(5):
                    group.start_soon(one, f"warm{index}")
            assert statuses[3:] == [200] * 5


async def _ps_count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/api/ps")).json()["models"])


async def _poll(client: httpx.AsyncClient, probe: Any, want: int, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while await probe() != want:
            await anyio.sleep(0.005)


def test_num_ctx_change_forces_a_reload_seen_in_load_duration() -> None:
    load_ms = 200
    with SimServer(**{**FAST, "load_ms": load_ms}) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as http:
            cold = http.post("/api/generate", json=_body("a", 2, stream=False)).json()
            warm = http.post("/api/generate", json=_body("b", 2, stream=False)).json()
            big = {"num_predict": 2, "num_ctx": 8192}
            reload = http.post(
                "/api/generate",
                json={"model": MODEL, "prompt": "c", "stream": False, "options": big},
            ).json()
            ps = http.get("/api/ps").json()["models"]
        assert cold["load_duration"] >= load_ms * 1e6
        assert warm["load_duration"] < load_ms * 1e6 / 4
        assert reload["load_duration"] >= load_ms * 1e6
        assert ps[0]["context_length"] == 8192
        assert sim.state()["models"][MODEL]["loads"] == 2


def test_max_loaded_models_evicts_and_keep_alive_rules() -> None:
    with SimServer(max_loaded_models=1, **FAST) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as http:
            assert (
                http.post("/api/copy", json={"source": MODEL, "destination": "twin"}).status_code
                == 200
            )
            http.post("/api/generate", json=_body("a", 1, stream=False))
            twin = {"model": "twin", "prompt": "b", "stream": False, "keep_alive": -1}
            http.post("/api/generate", json=twin)
            ps = http.get("/api/ps").json()["models"]
            assert [m["model"] for m in ps] == ["twin:latest"]
            assert int(ps[0]["expires_at"][:4]) > time.gmtime().tm_year + 200  # forever
            state = sim.state()["models"]
            assert (state[MODEL]["loaded"], state["twin:latest"]["loaded"]) == (False, True)
            short = {"model": "twin", "prompt": "c", "stream": False, "keep_alive": "300ms"}
            http.post("/api/generate", json=short)
            sim.wait_for(lambda s: not s["models"]["twin:latest"]["loaded"], timeout=10)
            assert http.get("/api/ps").json() == {"models": []}


def test_client_leaving_during_its_load_aborts_the_load() -> None:
    load_ms = 600
    with SimServer(**{**FAST, "load_ms": load_ms}) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as http:
            with pytest.raises(httpx.ReadTimeout):
                http.post("/api/generate", json=_body("x", 2), timeout=httpx.Timeout(30, read=0.1))
            sim.wait_for(lambda s: not s["models"][MODEL]["loaded"] and not _ps(http))
            assert sim.state()["models"][MODEL]["loads"] == 0
            again = http.post("/api/generate", json=_body("y", 2, stream=False)).json()
            assert again["load_duration"] >= load_ms * 1e6  # loaded from scratch
            assert sim.state()["models"][MODEL]["loads"] == 1


def _ps(http: httpx.Client) -> list[Any]:
    models: list[Any] = http.get("/api/ps").json()["models"]
    return models


@pytest.mark.anyio
async def test_leaving_while_queued_or_waiting_for_a_slot_costs_nothing() -> None:
    with SimServer(num_parallel=1, response_tokens=1000, **{**FAST, "load_ms": 600}) as sim:
        async with httpx.AsyncClient(base_url=sim.url, trust_env=False, timeout=30) as client:
            short = httpx.Timeout(30, read=0.2)
            ready = anyio.Event()
            done = anyio.Event()

            async def holder() -> None:
                body = _body("long", 100_000)
                async with client.stream("POST", "/api/generate", json=body) as response:
                    lines = response.aiter_lines()
                    await lines.__anext__()
                    ready.set()
                    await done.wait()

            async with anyio.create_task_group() as group:
                group.start_soon(holder)
                await _poll(client, lambda: _ps_count(client), 1)  # the load has begun
                # Queued in the scheduler behind a load it did not trigger, then gone:
                with pytest.raises(httpx.ReadTimeout):
                    await client.post("/api/generate", json=_body("queued", 2), timeout=short)
                await ready.wait()
                # Waiting for the only slot, then gone: abandoned at once.
                with pytest.raises(httpx.ReadTimeout):
                    await client.post("/api/generate", json=_body("waiter", 2), timeout=short)
                state = await anyio.to_thread.run_sync(
                    lambda: sim.wait_for(lambda s: s["requests"]["cancelled"] == 2)
                )
                assert state["scheduler_queue"] == 0
                assert state["models"][MODEL]["waiting"] == 0
                assert state["models"][MODEL]["active"] == 1
                assert state["models"][MODEL]["loads"] == 1
                done.set()
