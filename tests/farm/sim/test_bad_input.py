"""Bad input gets Ollama's status and message, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

from farm.sim.testing import SimServer

GEN = "/api/generate"
CASES = [
    pytest.param(GEN, b"", 400, "missing request body", id="empty-body"),
    pytest.param(GEN, b"{not json", 400, "invalid character 'n' looking for beginning of object key string", id="malformed"),
    pytest.param(GEN, b'{"model":"gemma3:4b"', 400, "unexpected EOF", id="truncated"),
    pytest.param(GEN, b"[1]", 400, "json: cannot unmarshal array into Go value of type api.GenerateRequest", id="not-object"),
    pytest.param(GEN, b'{"model":"gemma3:4b","stream":"yes"}', 400, "json: cannot unmarshal string into Go struct field GenerateRequest.stream of type bool", id="stream-type"),
    pytest.param(GEN, b'{"model":5}', 400, "json: cannot unmarshal number into Go struct field GenerateRequest.model of type string", id="model-type"),
    pytest.param(GEN, b'{"prompt":"hi"}', 404, "model '' not found", id="generate-no-model"),
    pytest.param("/api/chat", b'{"messages":[]}', 400, "model is required", id="chat-no-model"),
    pytest.param(GEN, b'{"model":"bad name!","prompt":"x"}', 400, "invalid model name", id="invalid-name"),
    pytest.param(GEN, b'{"model":"gemma3:4b","prompt":"x","keep_alive":"300"}', 400, 'time: missing unit in duration "300"', id="keep-alive-no-unit"),
    pytest.param(GEN, b'{"model":"gemma3:4b","prompt":"x","options":{"num_ctx":"big"}}', 500, 'option "num_ctx" must be of type integer', id="option-type"),
    pytest.param(GEN, b'{"model":"gemma3:4b","prompt":"x","raw":true,"system":"s"}', 400, "raw mode does not support template, system, or context", id="raw-system"),
    pytest.param(GEN, b'{"model":"gemma3:4b","prompt":"x","think":true}', 400, '"gemma3:4b" does not support thinking', id="think-unsupported"),
    pytest.param("/api/chat", b'{"model":"gemma3:4b","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}', 400, "registry.ollama.ai/library/gemma3:4b does not support tools", id="tools-unsupported"),
    pytest.param("/api/embed", b'{"model":"gemma3:4b","input":5}', 400, "invalid input type", id="embed-input"),
    pytest.param("/api/show", b"{}", 400, "model is required", id="show-no-model"),
    pytest.param("/api/show", b'{"model":"ghost"}', 404, "model 'ghost' not found", id="show-missing"),
    pytest.param("/api/copy", b'{"source":"ghost","destination":"x"}', 404, 'model "ghost" not found', id="copy-missing"),
    pytest.param("/api/embeddings", b'{"model":"ghost","prompt":"x"}', 404, 'model "ghost" not found, try pulling it first', id="embeddings-missing"),
]  # fmt: skip


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
