"""Raw wire behaviour: NDJSON and SSE through `curl -N`, special cases, delayed headers."""

from __future__ import annotations

import base64
import json
import select
import socket
import struct
import subprocess
from typing import Any

import httpx
import pytest

from farm.sim.child import SimServer
from farm.sim.frames import NativeChunk

from .conftest import FAST

MODEL = "gemma3:4b"


def _curl(url: str, body: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """POST with `curl -sN`, returning (headers, body lines)."""
    done = subprocess.run(
        ["curl", "-sN", "-D", "-", "--noproxy", "*", url, "-d", json.dumps(body)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    # Bytes, not text mode: universal newlines would turn the header CRLFs into LFs.
    head, _, payload = done.stdout.decode().partition("\r\n\r\n")
    headers = {}
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers, payload.split("\n")


def test_curl_sees_ndjson_one_object_per_line(sim: SimServer) -> None:
    body = {"model": MODEL, "prompt": "curl me", "options": {"num_predict": 6}}
    headers, lines = _curl(f"{sim.url}/api/generate", body)
    assert headers["content-type"] == "application/x-ndjson"
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert lines[-1] == ""  # every object ends with a newline
    objects = [json.loads(line) for line in lines[:-1]]
    assert [o["done"] for o in objects] == [False] * 6 + [True]
    assert list(objects[0]) == ["model", "created_at", "response", "done"]
    assert objects[0]["created_at"].endswith("Z")
    # Every line is a frame the simulator's own decoder reads back unchanged.
    assert [NativeChunk.decode(o).encode() for o in objects] == objects
    final = objects[-1]
    assert list(final)[:6] == ["model", "created_at", "response", "done", "done_reason", "context"]
    assert final["done_reason"] == "length" and final["eval_count"] == 6


def test_zero_metrics_are_left_out(sim: SimServer) -> None:
    body = {"model": MODEL, "prompt": "nothing", "options": {"num_predict": 0}}
    _, lines = _curl(f"{sim.url}/api/generate", body)
    final = json.loads(lines[0])
    assert final["done"] is True and final["done_reason"] == "length"
    assert "eval_count" not in final and "eval_duration" not in final
    assert final["prompt_eval_count"] == 2


def test_curl_sees_openai_sse_ending_with_done(sim: SimServer) -> None:
    body = {
        "model": MODEL,
        "stream": True,
        "max_tokens": 4,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "sse please"}],
    }
    headers, lines = _curl(f"{sim.url}/v1/chat/completions", body)
    assert headers["content-type"] == "text/event-stream"
    events = [line for line in lines if line]
    assert all(line.startswith("data: ") for line in events)
    assert lines[-3:] == ["data: [DONE]", "", ""]
    chunks = [json.loads(line[6:]) for line in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "role" not in chunks[1]["choices"][0]["delta"]
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert len({c["created"] for c in chunks}) == 1


def test_openai_non_stream_is_the_default(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        reply = http.post("/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 2})
        body = reply.json()
        assert reply.headers["content-type"] == "application/json"
        assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
        assert body["usage"]["completion_tokens"] == 2
        listing = http.get("/v1/models").json()
        assert listing["object"] == "list" and MODEL in [m["id"] for m in listing["data"]]


def test_empty_prompt_loads_and_keep_alive_zero_unloads(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        load = http.post("/api/generate", json={"model": MODEL})
        assert load.headers["content-type"] == "application/json; charset=utf-8"
        assert {k: v for k, v in load.json().items() if k != "created_at"} == {
            "model": MODEL,
            "response": "",
            "done": True,
            "done_reason": "load",
        }
        assert [m["model"] for m in http.get("/api/ps").json()["models"]] == [MODEL]
        chat = http.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0})
        assert chat.json()["done_reason"] == "unload"
        assert chat.json()["message"] == {"role": "assistant", "content": ""}
        assert http.get("/api/ps").json() == {"models": []}


def test_head_root_and_version(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        head = http.head("/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "text/plain; charset=utf-8"
        assert http.get("/api/version").json() == {"version": "0.33.0"}


def test_no_headers_before_first_token_and_stall_fault() -> None:
    with SimServer(stall_after_tokens=0, **FAST) as sim:
        request = (
            b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 39\r\n\r\n"
            b'{"model":"gemma3:4b","prompt":"stall"}\n'
        )
        with socket.create_connection((sim.host, sim.port)) as conn:
            conn.sendall(request)
            sim.wait_for(lambda s: s["models"][MODEL]["active"] == 1)
            readable, _, _ = select.select([conn], [], [], 0.2)
            assert readable == []  # no status line while no token exists
        state = sim.wait_for(lambda s: s["requests"]["cancelled"] == 1)
        assert state["models"][MODEL]["active"] == 0


def test_openai_models_and_embeddings(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        one = http.get(f"/v1/models/{MODEL}").json()
        assert (one["id"], one["object"], one["owned_by"]) == (MODEL, "model", "library")
        body = {"model": MODEL, "input": ["a", "b"], "dimensions": 8}
        floats = http.post("/v1/embeddings", json=body).json()
        assert [d["index"] for d in floats["data"]] == [0, 1]
        assert len(floats["data"][0]["embedding"]) == 8
        packed = http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
        raw = base64.b64decode(packed["data"][0]["embedding"])
        assert struct.unpack("<8f", raw) == pytest.approx(floats["data"][0]["embedding"], 1e-6)
        bad = http.post("/v1/embeddings", json={"model": MODEL, "input": []})
        assert bad.status_code == 400 and bad.json()["error"]["message"] == "invalid input"


def test_empty_store_lists_nothing_and_says_it_is_synthetic() -> None:
    with (
        SimServer(empty_store=True) as sim,
        httpx.Client(base_url=sim.url, trust_env=False) as http,
    ):
        assert http.get("/api/tags").json() == {"models": []}
        assert http.get("/v1/models").json() == {"object": "list", "data": None}
        assert http.head("/api/blobs/sha256:nothex").status_code == 400
        assert sim.state()["synthetic"] is True and sim.state()["models"] == {}
    assert "SYNTHETIC Ollama backend" in sim.output().splitlines()[0]
