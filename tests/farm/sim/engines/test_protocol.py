"""The worker's wire lines: commands encode to one JSON line, events decode or raise."""

from __future__ import annotations

import json

import pytest

from farm.sim.engines.llamacpp.protocol import (
    Done,
    GenerateCommand,
    GenerateOptions,
    Tokens,
    decode_event,
)

OPTIONS = GenerateOptions(
    max_tokens=8, temperature=0.0, top_k=40, top_p=0.9, min_p=0.0, seed=7,
    repeat_penalty=1.0, repeat_last_n=64, presence_penalty=0.0, frequency_penalty=0.0,
    format={"type": "object"},
)  # fmt: skip


def test_a_generate_command_is_one_json_line() -> None:
    line = GenerateCommand(3, 1, "Hi ✓", (2, 5), OPTIONS).encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = json.loads(line)
    assert (obj["cmd"], obj["id"], obj["ctx"], obj["prompt"], obj["prefix"]) == (
        "generate",
        3,
        1,
        "Hi ✓",
        [2, 5],
    )
    assert obj["options"]["format"] == {"type": "object"} and obj["options"]["seed"] == 7


def test_events_decode_to_typed_frames() -> None:
    assert decode_event(b'{"event":"tokens","id":3,"count":2,"text":" Pa"}') == Tokens(3, 2, " Pa")
    done = decode_event(b'{"event":"done","id":3,"reason":"length","context":[2,9]}')
    assert done == Done(3, "length", (2, 9))


@pytest.mark.parametrize(
    "line",
    [b"not json", b'{"event":"tokens","id":3}', b'{"event":"teleport","id":1}', b"[1]"],
    ids=["not-json", "missing-field", "unknown-event", "not-an-object"],
)
def test_a_bad_line_raises_value_error(line: bytes) -> None:
    with pytest.raises(ValueError, match="worker"):
        decode_event(line)
