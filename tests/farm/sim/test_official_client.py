"""The simulator through the official `ollama` Python client, sync and async."""

from __future__ import annotations

import ollama
import pytest

from farm.sim.testing import SimServer

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
