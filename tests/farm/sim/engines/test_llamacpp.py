"""The llama.cpp engine seen through the official `ollama` client, directly and via the proxy.

Real weights answer: streamed text is the model's, `prompt_eval_count` is the engine's own
token count (BOS + the rendered prompt), a JSON schema is enforced by grammar, a client that
leaves frees its slot at once, and NUM_PARALLEL+1 streams queue as Ollama's do.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import httpx
import jsonschema
import ollama
import pytest
from pydantic import BaseModel

from farm.sim.child import SimServer

from .conftest import MODEL, PARALLEL, tokens_of

GREEDY: dict[str, Any] = {"temperature": 0, "num_predict": 12}


class City(BaseModel):
    name: str
    country: str
    population: int


def test_streamed_generate_is_real_text_counted_by_the_engine(
    engine_client: ollama.Client, engine_sim: SimServer
) -> None:
    prompt = "The capital of France is"
    chunks = list(engine_client.generate(model=MODEL, prompt=prompt, options=GREEDY, stream=True))
    final = chunks[-1]
    text = "".join(chunk.response or "" for chunk in chunks)
    assert final.done and final.done_reason == "length" and final.eval_count == 12
    assert len(chunks) > 2 and len(text.split()) >= 3
    assert final.prompt_eval_count == 1 + len(tokens_of(engine_sim, prompt))
    assert final.prompt_eval_duration and final.eval_duration and final.total_duration
    assert final.context and len(final.context) == final.prompt_eval_count - 1 + 12


def test_streamed_chat_uses_the_plain_template(
    engine_client: ollama.Client, engine_sim: SimServer
) -> None:
    messages = [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    chunks = list(engine_client.chat(model=MODEL, messages=messages, options=GREEDY, stream=True))
    final = chunks[-1]
    content = "".join(chunk.message.content or "" for chunk in chunks)
    assert final.done and content.strip() and "User:" not in content
    rendered = (
        "You answer in one short sentence.\n\nUser: What is the capital of France?\nAssistant:"
    )
    assert final.prompt_eval_count == 1 + len(tokens_of(engine_sim, rendered))


def test_schema_constrained_chat_returns_json_that_validates(
    engine_client: ollama.Client,
) -> None:
    schema = City.model_json_schema()
    reply = engine_client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        format=schema,
        options={"temperature": 0, "num_predict": 96},
    )
    assert reply.done_reason == "stop"
    jsonschema.validate(json.loads(reply.message.content or ""), schema)


def test_openai_json_mode_and_stop_strings(engine_url: str) -> None:
    # JSON mode samples under a grammar, about 0.4 s a token on two cores: a short answer,
    # and a wait that allows for a loaded host.
    with httpx.Client(base_url=engine_url, trust_env=False, timeout=180) as http:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "A JSON object about a cat:"}],
            "response_format": {"type": "json_object"},
            "max_tokens": 32,
            "temperature": 0,
        }
        json_reply = http.post("/v1/chat/completions", json=body).json()
        stopped = http.post(
            "/api/generate",
            json={"model": MODEL, "prompt": "1, 2, 3, 4, 5,", "stream": False,
                  "options": {"temperature": 0, "num_predict": 40, "stop": ["9"]}},
        ).json()  # fmt: skip
    choice = json_reply["choices"][0]
    assert _json_or_json_prefix(choice["message"]["content"], choice["finish_reason"])
    assert json_reply["usage"]["completion_tokens"] > 0
    assert stopped["done_reason"] == "stop" and "9" not in stopped["response"]


def test_a_client_that_leaves_mid_stream_frees_its_slot_within_200_ms(
    engine_sim: SimServer,
) -> None:
    before = engine_sim.state()["requests"]["cancelled"]
    body = {"model": MODEL, "prompt": "Once upon a time", "options": {"num_predict": 400}}
    with httpx.Client(base_url=engine_sim.url, trust_env=False, timeout=60) as http:
        with http.stream("POST", "/api/generate", json=body) as response:
            lines = response.iter_lines()
            assert '"done":false' in next(lines) and '"done":false' in next(lines)
            assert engine_sim.state()["models"][MODEL]["active"] == 1
        left = time.monotonic()
    state = engine_sim.wait_for(
        lambda s: s["models"][MODEL]["active"] == 0 and s["requests"]["cancelled"] > before,
        timeout=5,
    )
    freed_s = time.monotonic() - left
    assert freed_s < 0.2, f"slot freed after {freed_s * 1000:.0f} ms"
    assert state["requests"]["cancelled"] == before + 1


def _stream(url: str, prompt: str, finals: dict[str, Any]) -> None:
    with ollama.Client(host=url) as client:
        for chunk in client.generate(
            model=MODEL, prompt=prompt, options={"num_predict": 24}, stream=True
        ):
            if chunk.done:
                finals[prompt] = chunk


def test_num_parallel_plus_one_streams_queue(engine_url: str, engine_sim: SimServer) -> None:
    finals: dict[str, Any] = {}
    prompts = [f"Story number {i}:" for i in range(PARALLEL + 1)]
    threads = [threading.Thread(target=_stream, args=(engine_url, p, finals)) for p in prompts]
    for thread in threads:
        thread.start()
    state = engine_sim.wait_for(
        lambda s: s["models"][MODEL]["active"] == PARALLEL and s["models"][MODEL]["waiting"] == 1,
        timeout=30,
    )
    assert state["models"][MODEL]["active"] == PARALLEL
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(finals) == sorted(prompts)
    # Sampled at temperature 0.8, an answer may also end by its end token before the limit.
    assert all(0 < f.eval_count <= 24 for f in finals.values())
    assert all(f.eval_count == 24 or f.done_reason == "stop" for f in finals.values())
    assert all(f.done_reason in ("stop", "length") for f in finals.values())


def test_listing_show_ps_and_version_say_what_it_is(engine_sim: SimServer) -> None:
    with ollama.Client(host=engine_sim.url) as client:
        tags = client.list()
        shown = client.show(MODEL)
        client.generate(model=MODEL, prompt="Hi", options={"num_predict": 1})
        loaded = client.ps()
    (entry,) = tags.models
    assert entry.model == MODEL and entry.details is not None
    assert entry.details.family == "gemma3" and entry.details.quantization_level == "Q4_K_M"
    info = shown.modelinfo or {}
    assert info["general.architecture"] == "gemma3" and info["gemma3.block_count"] == 18
    assert info["gemma3.attention.head_count"] == 4
    assert info["gemma3.attention.head_count_kv"] == 1
    assert info["gemma3.context_length"] == 32768
    assert info["general.parameter_count"] > 200_000_000
    assert "User: {{ .Content }}" in (shown.template or "")
    assert "plain" in (shown.modelfile or "") and "Gemma Terms of Use" in (shown.license or "")
    (running,) = loaded.models
    assert running.context_length == 512 and running.size_vram == 0 and running.size
    with httpx.Client(base_url=engine_sim.url, trust_env=False) as http:
        version = http.get("/api/version").json()
    label = "llama.cpp (real weights: Gemma 3 270M base, CPU)"
    assert version["engine"] == label
    state = engine_sim.state()
    assert state["synthetic"] is False and state["engine"]["label"] == label
    assert state["engine"]["threads"] >= 1
    assert label in engine_sim.output()  # the startup line


def test_embed_gives_normalised_vectors_of_the_model_width(engine_sim: SimServer) -> None:
    with ollama.Client(host=engine_sim.url) as client:
        result = client.embed(model=MODEL, input=["a cat", "a dog"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 640
    assert abs(sum(v * v for v in result.embeddings[0]) - 1) < 1e-3
    assert result.embeddings[0] != result.embeddings[1]
    assert result.prompt_eval_count == 2 + len(tokens_of(engine_sim, "a cat")) + len(
        tokens_of(engine_sim, "a dog")
    )


def test_a_seed_repeats_when_a_sequence_runs_alone(engine_sim: SimServer) -> None:
    options = {"seed": 42, "temperature": 0.9, "num_predict": 10}
    with ollama.Client(host=engine_sim.url) as client:
        first = client.generate(model=MODEL, prompt="My favourite colour is", options=options)
        second = client.generate(model=MODEL, prompt="My favourite colour is", options=options)
    assert first.response == second.response and first.response.strip()


@pytest.mark.timeout(120)
def test_the_worker_is_restarted_after_a_crash(engine_sim: SimServer) -> None:
    before = engine_sim.state()["engine"]
    os.kill(before["worker_pid"], signal.SIGKILL)
    engine_sim.wait_for(
        lambda s: s["engine"]["ready"] and s["engine"]["worker_pid"] != before["worker_pid"],
        timeout=60,
    )
    with ollama.Client(host=engine_sim.url) as client:
        reply = client.generate(model=MODEL, prompt="Hello", options={"num_predict": 3})
    assert reply.eval_count == 3
    assert engine_sim.state()["engine"]["worker_restarts"] == before["worker_restarts"] + 1


def _json_or_json_prefix(text: str, finish_reason: str) -> bool:
    """JSON mode's answer: a whole JSON document, or one cut by `max_tokens` (`length`)."""
    try:
        return isinstance(json.loads(text), dict | list)
    except json.JSONDecodeError:
        if finish_reason != "length" or not text.lstrip().startswith(("{", "[")):
            return False
    # Cut mid-token (a key, a number, an escape): all but its last few characters, closed,
    # must parse.
    for cut in range(min(len(text), 24)):
        head = text[: len(text) - cut].rstrip().rstrip(",:").rstrip()
        try:
            json.loads(head + _closing(head))
        except json.JSONDecodeError:
            continue
        return True
    return False


def _closing(text: str) -> str:
    """What closes the strings, objects and arrays left open at the end of `text`."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    return ('"' if in_string else "") + "".join(reversed(stack))
