"""Decoding Ollama NDJSON lines and OpenAI SSE lines into typed chunks."""

from __future__ import annotations

import pytest

from bench.errors import WireError
from bench.wire import decode_ndjson, decode_sse

FINAL = (
    b'{"model":"m","created_at":"2026-05-01T12:00:00Z","response":"","done":true,'
    b'"done_reason":"length","context":[1,2],"total_duration":900,"load_duration":100,'
    b'"prompt_eval_count":26,"prompt_eval_duration":300,"eval_count":4,"eval_duration":400}\n'
)


def test_generate_chunk_carries_its_text() -> None:
    chunk = decode_ndjson(b'{"model":"m","response":"The","done":false}\n')
    assert (chunk.content, chunk.done, chunk.has_text) == ("The", False, True)


def test_chat_chunk_text_comes_from_the_message() -> None:
    chunk = decode_ndjson('{"message":{"role":"assistant","content":"Hi","thinking":"hm"}}')
    assert (chunk.content, chunk.thinking) == ("Hi", "hm")


def test_final_chunk_carries_server_durations() -> None:
    chunk = decode_ndjson(FINAL)
    assert chunk.done and chunk.done_reason == "length" and not chunk.has_text
    assert chunk.stats is not None
    assert (chunk.stats.eval_count, chunk.stats.eval_duration_ns) == (4, 400)
    assert (chunk.stats.load_duration_ns, chunk.stats.total_duration_ns) == (100, 900)


def test_omitted_metrics_read_as_zero() -> None:
    chunk = decode_ndjson('{"response":"","done":true,"eval_count":3}')
    assert chunk.stats is not None and chunk.stats.prompt_eval_duration_ns == 0


def test_in_band_error_line_is_an_error_chunk() -> None:
    chunk = decode_ndjson('{"error":"model runner crashed"}')
    assert chunk.error == "model runner crashed" and not chunk.done


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1,2]\n", b'{"done":true,"eval_count":"4"}'],
    ids=["garbage", "array", "string-count"],
)
def test_malformed_lines_raise_wire_error(line: bytes) -> None:
    with pytest.raises(WireError):
        decode_ndjson(line)


def test_sse_content_delta_and_done_marker() -> None:
    chunk = decode_sse(
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n'
    )
    assert chunk is not None and chunk.content == "Hi"
    done = decode_sse(b"data: [DONE]\n")
    assert done is not None and done.done


def test_sse_usage_chunk_gives_server_token_count() -> None:
    chunk = decode_sse('data: {"choices":[],"usage":{"prompt_tokens":26,"completion_tokens":2}}')
    assert chunk is not None and chunk.stats is not None and chunk.stats.eval_count == 2


@pytest.mark.parametrize(
    "line", [b"\n", b": keep-alive\n", b"event: x\n"], ids=["blank", "comment", "event"]
)
def test_sse_lines_without_data_are_skipped(line: bytes) -> None:
    assert decode_sse(line) is None


def test_sse_completions_text_and_error_shape() -> None:
    chunk = decode_sse('data: {"choices":[{"text":"ab","index":0,"finish_reason":null}]}')
    assert chunk is not None and chunk.content == "ab"
    err = decode_sse('data: {"error":{"message":"busy","type":"api_error"}}')
    assert err is not None and err.error == "busy"
