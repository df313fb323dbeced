"""The bridge's JSON lines: commands encode, events decode, junk is refused."""

from __future__ import annotations

import json

import pytest

from relay.bridge.protocol import (
    Acked,
    BridgeFailure,
    Closed,
    Message,
    ProbeEcho,
    Ready,
    SendCommand,
    SendError,
    Sent,
    Unacked,
    decode_event,
)


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b'{"event":"ready","addr":"x.ab","connect_ms":12}', Ready("x.ab", 12)),
        (b'{"event":"message","src":"s","data":"d"}', Message("s", "d")),
        (b'{"event":"sent","id":3}', Sent(3)),
        (
            b'{"event":"send_error","id":3,"error":"E","permanent":true}',
            SendError(3, "E", True),
        ),
        (b'{"event":"acked","id":4}', Acked(4)),
        (
            b'{"event":"unacked","id":4,"error":"Error: Message timeout"}',
            Unacked(4, "Error: Message timeout"),
        ),
        (b'{"event":"probe","nonce":"n"}', ProbeEcho("n")),
        (b'{"event":"error","error":"boom","fatal":true}', BridgeFailure("boom", True)),
        (b'{"event":"closed"}\n', Closed()),
    ],
    ids=["ready", "message", "sent", "send_error", "acked", "unacked", "probe", "error", "closed"],
)
def test_events_decode(line: bytes, event: object) -> None:
    assert decode_event(line) == event


@pytest.mark.parametrize(
    "line",
    [b"WebSocket unexpectedly closed", b"[]", b'{"event":"sent"}', b'{"event":"other"}'],
    ids=["log-text", "not-object", "missing-field", "unknown-event"],
)
def test_junk_lines_raise_value_error(line: bytes) -> None:
    with pytest.raises(ValueError, match="bridge"):
        decode_event(line)


def test_send_command_is_one_json_line_even_with_newlines_in_data() -> None:
    line = SendCommand(7, "dest", 'a\nb "c" ✓').encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"cmd": "send", "id": 7, "dest": "dest", "data": 'a\nb "c" ✓'}


def test_send_command_asks_for_an_ack_only_when_told() -> None:
    assert "ack" not in json.loads(SendCommand(1, "d", "x").encode())
    assert json.loads(SendCommand(1, "d", "x", ack=True).encode())["ack"] is True
