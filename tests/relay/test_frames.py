"""DM frames: exact wire shapes, round trips, and a decoder that only ever raises FrameError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.errors import FrameError
from relay.frames import (
    Cancel,
    Frame,
    HttpRequest,
    HttpSpec,
    Info,
    InfoRequest,
    Keepalive,
    LineEntry,
    Ping,
    Pong,
    Response,
    ResponseBegin,
    ResponseEnd,
    ResponseLines,
    decode,
    encode,
)
from tests.relay.strategies import frames_like

FRAMES: list[Frame] = [
    HttpRequest("r1", HttpSpec(path="/api/generate", method="POST", service="ollama",
                               headers={"Content-Type": "application/json"},
                               json={"model": "m", "stream": True}, timeout_ms=60000,
                               verify=True, stream=True)),
    HttpRequest(7, HttpSpec(url="https://example.com/x", body_b64="AAEC")),
    Ping(), Ping("p"), Pong(1, "relay.abc"), Pong(1, "relay.abc", "p"),
    InfoRequest(), Info(("ollama",), True, 4, 2097152, "i"), Cancel("r1"),
    ResponseBegin("r1", True, 200, {"content-type": "application/x-ndjson"}, 5),
    ResponseLines("r1", (LineEntry(1, 5, '{"a":1}'), LineEntry(2, 6, "é", truncated=True))),
    Keepalive("r1", 9),
    ResponseEnd("r1", True, 10, 2, 2, False, True, False, None, 12),
    Response("r1", False, 503, {}, None, None, False, "busy"),
    Response("r1", True, 200, {}, {"k": [1, 2]}, None, False, None),
]  # fmt: skip


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_every_frame_survives_encode_then_decode(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


def test_seed_request_example_decodes() -> None:
    seed = {
        "event": "relay.http",
        "id": "abc123",
        "req": {
            "service": "ollama",
            "path": "/api/generate",
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "json": {"model": "gemma3:4b", "prompt": "Say hello", "stream": True},
            "timeout_ms": 60000,
            "verify": True,
            "stream": "chunks",
        },
    }
    frame = decode(json.dumps(seed))
    assert isinstance(frame, HttpRequest) and frame.id == "abc123"
    assert frame.req.stream and frame.req.service == "ollama" and frame.req.timeout_ms == 60000


@pytest.mark.parametrize(
    ("stream", "header", "expected"),
    [
        ("chunks", None, True), ("dm", None, True), (True, None, True), ("1", None, True),
        ("on", None, True), (None, None, False), (False, None, False), ("0", None, False),
        (None, "1", True), (None, "chunks", True), (None, "true", True), (None, "dm", True),
    ],
    ids=lambda v: repr(v),
)  # fmt: skip
def test_stream_flag_and_the_originals_header(stream: object, header: str | None, expected: bool):
    req: dict[str, object] = {"service": "ollama"}
    if stream is not None:
        req["stream"] = stream
    if header is not None:
        req["headers"] = {"X-Relay-Stream": header}
    frame = decode(json.dumps({"event": "relay.http", "id": "x", "req": req}))
    assert isinstance(frame, HttpRequest) and frame.req.stream is expected


@pytest.mark.parametrize(
    ("payload", "rid", "reason"),
    [
        ("not json", None, "not JSON"),
        ('{"event":"relay.http","id":"a",', "a", "not JSON"),
        ("[1]", None, "a frame must be a JSON object"),
        ('{"id":"a"}', "a", "missing 'event'"),
        ('{"event":"relay.http","req":{"service":"s"}}', None, "missing 'id'"),
        ('{"event":"relay.http","id":true,"req":{}}', None, "'id' must be"),
        ('{"event":"relay.http","id":"a","req":{}}', "a", "give exactly one of"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","url":"u"}}', "a", "exactly one"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","method":"BREW"}}', "a", "method"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","headers":{"a":1}}}', "a", "map"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","body_b64":"@@"}}', "a", "base64"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","timeout_ms":0}}', "a", "timeout"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","timeout_ms":true}}', "a", "timeo"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","stream":"maybe"}}', "a", "stream"),
        ('{"event":"relay.http","id":"a","req":{"service":"s","verify":"no"}}', "a", "verify"),
        ('{"event":"relay.cancel"}', None, "missing 'id'"),
        ('{"event":"relay.warp","id":9}', 9, "unknown event"),
        ('{"event":"relay.response.lines","id":"a","lines":[{"seq":"1"}]}', "a", "'seq'"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_malformed_frames_raise_frame_error_with_the_id_when_readable(
    payload: str, rid: object, reason: str
) -> None:
    with pytest.raises(FrameError) as caught:
        decode(payload)
    assert caught.value.request_id == rid
    assert reason in caught.value.reason


def test_oversized_message_is_refused_but_its_id_is_still_found() -> None:
    payload = '{"event":"relay.http","id":"big","req":{"json":"' + "x" * 5000 + '"}}'
    with pytest.raises(FrameError) as caught:
        decode(payload, max_bytes=4000)
    assert caught.value.request_id == "big" and "over 4000 bytes" in caught.value.reason


# --- fuzzing ------------------------------------------------------------------------------------
def _decode_or_frame_error(payload: str) -> None:
    try:
        frame = decode(payload)
    except FrameError as exc:
        assert isinstance(exc.reason, str) and exc.reason
        assert exc.request_id is None or isinstance(exc.request_id, str | int)
        return
    # Whatever decodes must encode again and decode to the same frame.
    assert decode(encode(frame)) == frame


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_only_raises_frame_error(payload: str) -> None:
    _decode_or_frame_error(payload)


@settings(max_examples=300, deadline=None)
@given(frames_like)
def test_fuzz_frame_shaped_json_only_raises_frame_error(obj: dict[str, object]) -> None:
    _decode_or_frame_error(json.dumps(obj))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_only_raise_frame_error(data: bytes) -> None:
    _decode_or_frame_error(data.decode("utf-8", "surrogateescape"))
