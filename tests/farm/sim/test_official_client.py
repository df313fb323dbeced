"""The simulator through the official `ollama` Python client, sync and async."""

from __future__ import annotations

from pathlib import Path

import httpx
import ollama
import pytest

from farm.sim.child import SimServer

from .conftest import FAST

MODEL = "gemma3:4b"


def test_generate_non_stream_returns_one_object_with_metrics(client: ollama.Client) -> None:
    reply = client.generate(model=MODEL, prompt="Why is the sky blue?", options={"num_predict": 7})
    assert reply.done is True
    assert reply.done_reason == "length"
    assert reply.eval_count == 7
    assert reply.response and reply.response.strip()
    assert reply.prompt_eval_count == 1 + 6  # BOS + "Why is the sky blue ?"
    assert reply.total_duration >= reply.load_duration + reply.eval_duration
    assert reply.context and len(reply.context) >= reply.prompt_eval_count


def test_generate_stream_yields_tokens_then_final_chunk(client: ollama.Client) -> None:
    chunks = list(client.generate(model=MODEL, prompt="hello", stream=True))
    assert [c.done for c in chunks[:-1]] == [False] * (len(chunks) - 1)
    final = chunks[-1]
    assert final.done and final.done_reason == "stop" and final.response == ""
    assert final.eval_count == len(chunks) - 1
    text = "".join(c.response for c in chunks)
    again = client.generate(model=MODEL, prompt="hello")
    assert again.response == text  # same seed + prompt → same text


def test_chat_stream_and_non_stream_agree(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Tell me about slots."}]
    chunks = list(client.chat(model=MODEL, messages=messages, stream=True))
    whole = client.chat(model=MODEL, messages=messages)
    assert "".join(c.message.content or "" for c in chunks) == whole.message.content
    assert chunks[-1].done and chunks[-1].message.content == ""
    assert whole.message.role == "assistant"
    assert whole.eval_count == chunks[-1].eval_count


def test_seed_option_changes_the_text_deterministically(client: ollama.Client) -> None:
    first = client.generate(model=MODEL, prompt="p", options={"seed": 7, "num_predict": 12})
    second = client.generate(model=MODEL, prompt="p", options={"seed": 7, "num_predict": 12})
    other = client.generate(model=MODEL, prompt="p", options={"seed": 8, "num_predict": 12})
    assert first.response == second.response != other.response


def test_stop_sequence_ends_generation_before_it(client: ollama.Client) -> None:
    free = client.generate(model=MODEL, prompt="stop test", options={"num_predict": 40})
    words = free.response.split()
    stop = " " + words[3]
    reply = client.generate(model=MODEL, prompt="stop test", options={"stop": [stop]})
    assert reply.done_reason == "stop"
    assert stop not in reply.response
    assert free.response.startswith(reply.response)


def test_list_and_ps(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert MODEL in names
    client.generate(model=MODEL, prompt="warm up", options={"num_predict": 1})
    running = client.ps().models
    assert [m.model for m in running] == [MODEL]
    assert running[0].context_length == 4096
    assert running[0].expires_at is not None


def test_unknown_model_raises_response_error_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model="nope:1b", prompt="hi")
    assert info.value.status_code == 404
    assert info.value.error == "model 'nope:1b' not found"
    with pytest.raises(ollama.ResponseError) as info:
        list(client.chat(model="nope:1b", messages=[{"role": "user", "content": "x"}], stream=True))
    assert info.value.status_code == 404


@pytest.mark.anyio
async def test_async_client_streams_generate_and_chat(sim: SimServer) -> None:
    async with ollama.AsyncClient(host=sim.url) as client:
        await _async_checks(client)


async def _async_checks(client: ollama.AsyncClient) -> None:
    pieces = [c async for c in await client.generate(model=MODEL, prompt="async", stream=True)]
    assert pieces[-1].done and pieces[-1].eval_count == len(pieces) - 1
    reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.done and reply.message.content
    with pytest.raises(ollama.ResponseError) as info:
        await client.chat(model="missing", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404


def test_model_management_show_pull_copy_delete_embed(tmp_path: Path) -> None:
    with SimServer(pull_ms=40, **FAST) as sim, ollama.Client(host=sim.url) as client:
        shown = client.show(MODEL)
        assert shown.details.family == "gemma3"
        assert "completion" in shown.capabilities
        assert shown.modelinfo["gemma3.context_length"] == 131072
        progress = list(client.pull("all-minilm", stream=True))
        assert progress[0].status == "pulling manifest"
        assert progress[-1].status == "success"
        layer = [p for p in progress if p.digest and p.completed]
        assert layer[-1].completed == layer[-1].total
        with pytest.raises(ollama.ResponseError) as info:
            list(client.pull("no-such-model", stream=True))
        assert info.value.error == "pull model manifest: file does not exist"
        result = client.embed(model="all-minilm", input=["one", "two"])
        assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 384
        norm = sum(v * v for v in result.embeddings[0])
        assert abs(norm - 1) < 1e-6
        assert client.embed(model="all-minilm", input="one").embeddings[0] == result.embeddings[0]
        assert client.copy(MODEL, "backup:1").status == "success"
        assert {"backup:1", "all-minilm:latest", MODEL} <= {m.model for m in client.list().models}
        assert client.delete("backup:1").status == "success"
        with pytest.raises(ollama.ResponseError) as info:
            client.delete("backup:1")
        assert info.value.status_code == 404
        blob = tmp_path / "weights.gguf"
        blob.write_bytes(b"GGUF" + bytes(range(256)) * 4096)  # streamed, about 1 MiB
        digest = client.create_blob(blob)
        with httpx.Client(base_url=sim.url, trust_env=False) as http:
            assert http.head(f"/api/blobs/{digest}").status_code == 200
            again = http.post(f"/api/blobs/{digest}", content=blob.read_bytes())
            assert again.status_code == 200  # already present
            wrong = http.post("/api/blobs/sha256:" + "0" * 64, content=b"other")
            assert wrong.status_code == 400
            assert wrong.json()["error"].startswith('digest mismatch, expected "sha256:000')


def test_thinking_model_reasons_first_unless_told_not_to() -> None:
    with SimServer(pull_ms=10, **FAST) as sim, ollama.Client(host=sim.url) as client:
        assert client.pull("qwen3:0.6b").status == "success"
        chunks = list(
            client.chat(
                model="qwen3:0.6b", messages=[{"role": "user", "content": "q"}], stream=True
            )
        )
        thinking = [c.message.thinking for c in chunks if c.message.thinking]
        content = [c.message.content for c in chunks if c.message.content]
        assert thinking and content
        first_content = next(i for i, c in enumerate(chunks) if c.message.content)
        assert all(not c.message.thinking for c in chunks[first_content:])
        assert chunks[-1].eval_count == len(thinking) + len(content)
        plain = client.generate(model="qwen3:0.6b", prompt="q", think=False)
        assert plain.thinking is None and plain.response
        with pytest.raises(ollama.ResponseError, match="does not support thinking"):
            client.generate(model=MODEL, prompt="q", think=True)


def test_create_from_existing_model_and_push_is_refused() -> None:
    with SimServer(**FAST) as sim, ollama.Client(host=sim.url) as client:
        progress = list(client.create(model="derived", from_=MODEL, stream=True))
        assert progress[0].status.startswith("using existing layer sha256:")
        assert progress[-1].status == "success"
        assert "derived:latest" in {m.model for m in client.list().models}
        with pytest.raises(ollama.ResponseError, match="unauthorized"):
            list(client.push("someone/derived", stream=True))


def test_generate_context_is_prefixed_to_the_next_prompt(client: ollama.Client) -> None:
    first = client.generate(model=MODEL, prompt="remember this", options={"num_predict": 3})
    assert first.context is not None
    follow = client.generate(
        model=MODEL, prompt="and this", context=first.context, options={"num_predict": 2}
    )
    assert follow.prompt_eval_count == len(first.context) + 1 + 2
    assert follow.context[: len(first.context)] == first.context
