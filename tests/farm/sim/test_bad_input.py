"""Bad input gets Ollama's status and message, and the server keeps serving."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from farm.sim.child import SimServer

GEN = "/api/generate"
M = "gemma3:4b"
UNMARSHAL = "json: cannot unmarshal "
TOOLS = [{"type": "function", "function": {"name": "f"}}]
USER = [{"role": "user", "content": "x"}]


def case(path: str, body: bytes | dict[str, Any], status: int, message: str, name: str) -> Any:
    """One bad request: raw bytes, or a dict sent as JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return pytest.param(path, raw, status, message, id=name)


CASES = [
    case(GEN, b"", 400, "missing request body", "empty-body"),
    case(
        GEN,
        b"{not json",
        400,
        "invalid character 'n' looking for beginning of object key string",
        "malformed",
    ),
    case(GEN, b'{"model":"gemma3:4b"', 400, "unexpected EOF", "truncated"),
    case(
        GEN,
        b"[1]",
        400,
        UNMARSHAL + "array into Go value of type api.GenerateRequest",
        "not-object",
    ),
    case(
        GEN,
        {"model": M, "stream": "yes"},
        400,
        UNMARSHAL + "string into Go struct field GenerateRequest.stream of type bool",
        "stream-type",
    ),
    case(
        GEN,
        {"model": 5},
        400,
        UNMARSHAL + "number into Go struct field GenerateRequest.model of type string",
        "model-type",
    ),
    case(GEN, {"prompt": "hi"}, 404, "model '' not found", "generate-no-model"),
    case("/api/chat", {"messages": []}, 400, "model is required", "chat-no-model"),
    case(GEN, {"model": "bad name!", "prompt": "x"}, 400, "invalid model name", "invalid-name"),
    case(
        GEN,
        {"model": M, "prompt": "x", "keep_alive": "300"},
        400,
        'time: missing unit in duration "300"',
        "keep-alive-no-unit",
    ),
    case(
        GEN,
        {"model": "ghost", "prompt": "x", "keep_alive": True},
        400,
        "Unsupported type: 'bool'",
        "keep-alive-decoded-before-model-lookup",
    ),
    case(
        GEN,
        {"model": M, "prompt": "x", "options": {"num_ctx": "big"}},
        500,
        'option "num_ctx" must be of type integer',
        "option-type",
    ),
    case(
        GEN,
        {"model": M, "prompt": "x", "raw": True, "system": "s"},
        400,
        "raw mode does not support template, system, or context",
        "raw-system",
    ),
    case(
        GEN,
        {"model": M, "prompt": "x", "think": True},
        400,
        '"gemma3:4b" does not support thinking',
        "think-unsupported",
    ),
    case(
        "/api/chat",
        {"model": M, "messages": USER, "tools": TOOLS},
        400,
        "registry.ollama.ai/library/gemma3:4b does not support tools",
        "tools-unsupported",
    ),
    case("/api/embed", {"model": M, "input": 5}, 400, "invalid input type", "embed-input"),
    case("/api/show", {}, 400, "model is required", "show-no-model"),
    case("/api/show", {"model": "ghost"}, 404, "model 'ghost' not found", "show-missing"),
    case(
        "/api/copy",
        {"source": "ghost", "destination": "x"},
        404,
        'model "ghost" not found',
        "copy-missing",
    ),
    case(
        "/api/embeddings",
        {"model": "ghost", "prompt": "x"},
        404,
        'model "ghost" not found, try pulling it first',
        "embeddings-missing",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), CASES)
def test_bad_request_gets_ollama_status_and_text(
    sim: SimServer, path: str, body: bytes, status: int, message: str
) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        response = http.post(path, content=body)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == {"error": message}
        assert http.get("/").text == "Ollama is running"


def test_unknown_path_and_wrong_method_answer_like_gin(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        missing = http.get("/api/nothing")
        assert (missing.status_code, missing.text) == (404, "404 page not found")
        wrong = http.get("/api/generate")
        assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def test_openai_errors_use_openai_shape(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        response = http.post("/v1/chat/completions", json={"model": "ghost", "messages": [{}]})
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["type"] == "not_found_error" and error["param"] is None
        empty = http.post("/v1/chat/completions", json={"model": "gemma3:4b", "messages": []})
        assert empty.json()["error"]["message"] == "[] is too short - 'messages'"


def test_host_guard_and_cors(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url, trust_env=False) as http:
        evil = http.get("/api/version", headers={"Host": "evil.example.com"})
        assert (evil.status_code, evil.content) == (403, b"")
        assert http.get("/api/version", headers={"Host": "localhost:11434"}).status_code == 200
        blocked = http.get("/api/version", headers={"Origin": "https://evil.example.com"})
        assert (blocked.status_code, blocked.content) == (403, b"")
        allowed = http.get("/api/version", headers={"Origin": "http://localhost:3000"})
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
