"""Token counts of a relayed response, read from its tail (what usage rows record)."""

from __future__ import annotations

import json

import pytest

from farm.proxy.accounting import TAIL_BYTES, Tally, Tokens


def _fed(kind: str, *chunks: bytes) -> Tokens:
    tally = Tally(kind)
    for chunk in chunks:
        tally.feed(chunk)
    return tally.tokens()


def test_ollama_final_chunk_gives_prompt_and_output_tokens() -> None:
    lines = [json.dumps({"response": "x" * 50, "done": False}).encode() + b"\n"] * 1000
    final = b'{"done":true,"prompt_eval_count":12,"eval_count":1000}\n'
    assert sum(map(len, lines)) > TAIL_BYTES  # only the tail is kept
    assert _fed("ndjson", *lines, final[:20], final[20:]) == Tokens(12, 1000)


def test_non_streamed_and_openai_usage() -> None:
    assert _fed("other", b'{"prompt_eval_count":4,"eval_count":9}') == Tokens(4, 9)
    usage = b'{"usage":{"prompt_tokens":2,"completion_tokens":5}}'
    assert _fed("other", usage) == Tokens(2, 5)
    sse = b"data: {}\n\ndata: " + usage + b"\n\ndata: [DONE]\n\n"
    assert _fed("sse", sse) == Tokens(2, 5)


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("sse", b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n', Tokens(0, 2, True)),
        ("ndjson", b'{"response":"cut off mid', Tokens(0, 0, True)),
        ("other", b"", Tokens(0, 0, True)),
    ],
    ids=["openai-stream-without-usage-counts-events", "cut-stream", "empty"],
)
def test_without_a_final_chunk_the_count_is_an_estimate(
    kind: str, body: bytes, expected: Tokens
) -> None:
    assert _fed(kind, body) == expected
