"""Injected faults: a stream that fails mid-way is reported as cut, never as success."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from farm.sim.child import SimServer
from farm.sim.generation import RUNNER_DIED

from .conftest import FAST

MODEL = "gemma3:4b"


def test_fail_after_tokens_ends_the_stream_with_an_error_line() -> None:
    with SimServer(fail_after_tokens=3, **FAST) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False) as http:
            body = {"model": MODEL, "prompt": "x", "options": {"num_predict": 10}}
            with http.stream("POST", "/api/generate", json=body) as response:
                assert response.status_code == 200
                lines = [json.loads(line) for line in response.iter_lines()]
        assert [line.get("done") for line in lines[:3]] == [False] * 3
        assert lines[3:] == [{"error": RUNNER_DIED}]
        with ollama.Client(host=sim.url) as client:
            seen = []
            with pytest.raises(ollama.ResponseError) as info:
                for chunk in client.generate(model=MODEL, prompt="y", stream=True):
                    seen.append(chunk)
            assert len(seen) == 3 and info.value.error == RUNNER_DIED
            with pytest.raises(ollama.ResponseError) as info:
                client.chat(model=MODEL, messages=[{"role": "user", "content": "z"}])
            assert info.value.status_code == 500  # nothing sent yet: a real status
        state = sim.state()["requests"]
        assert state["failed"] == 3 and state["finished"] == 0


def test_fail_before_the_first_token_is_a_500() -> None:
    with SimServer(fail_after_tokens=0, **FAST) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False) as http:
            reply = http.post("/api/generate", json={"model": MODEL, "prompt": "x"})
            assert reply.status_code == 500
            assert reply.json() == {"error": RUNNER_DIED}
            sse = http.post(
                "/v1/chat/completions",
                json={
                    "model": MODEL,
                    "stream": True,
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
            assert sse.status_code == 500 and sse.json()["error"]["type"] == "api_error"


def test_stall_holds_the_slot_until_the_client_leaves() -> None:
    with SimServer(stall_after_tokens=2, num_parallel=1, **FAST) as sim:
        with httpx.Client(base_url=sim.url, trust_env=False) as http:
            body = {"model": MODEL, "prompt": "x"}
            with pytest.raises(httpx.ReadTimeout):
                with http.stream("POST", "/api/generate", json=body, timeout=0.5) as response:
                    lines = response.iter_lines()
                    assert json.loads(next(lines))["done"] is False
                    assert json.loads(next(lines))["done"] is False
                    next(lines)
            state = sim.wait_for(lambda s: s["requests"]["cancelled"] == 1)
            assert state["models"][MODEL]["active"] == 0
