"""Fast-path frames and the peer's receiver state: encode/decode, malformed input, acks."""

from __future__ import annotations

import pytest

from relay.client.mux import AckPolicy, FastEnd, MuxReceiver, to_frames
from relay.errors import FrameError
from relay.frames import HttpRequest, HttpSpec, Info, Keepalive, ResponseLines, decode, encode
from relay.muxframes import (
    MuxAccepted,
    MuxAck,
    MuxBegin,
    MuxEnd,
    MuxKeepalive,
    MuxLines,
    MuxMessage,
    item_size,
)

END = MuxEnd("a", True, 10, 2, 2, False, True, False, None, 5, True)
FRAMES = [
    MuxMessage("e1", 3, 7, (MuxAccepted(1), MuxBegin("a", True, 200, {"x": "y"}), END)),
    MuxMessage("e1", 4, 8, (MuxLines("a", 3, ("l3", "l4"), (4,)), MuxLines(2, 1, ("é\n",)))),
    MuxKeepalive("e1", 4, 9),
    MuxAck("e1", 2, (4, 6)),
    MuxMessage("e1", 9, 8, (END,), lo=7),
    MuxKeepalive("e1", 9, 9, lo=10),
]


@pytest.mark.parametrize(
    "frame", FRAMES, ids=["message", "lines", "keepalive", "ack", "message-lo", "keepalive-lo"]
)
def test_fast_path_frames_round_trip(frame) -> None:
    assert decode(encode(frame)) == frame


def test_seed_frames_stay_byte_identical_without_caps_or_offers() -> None:
    spec = HttpSpec("/api/tags", "GET", service="ollama")
    assert encode(HttpRequest("r", spec)) == (
        '{"event":"relay.http","id":"r","req":{"path":"/api/tags","method":"GET",'
        '"service":"ollama","headers":{},"timeout_ms":30000}}'
    )
    assert '"offers"' not in encode(Info(("ollama",), True, 4, 10))
    fast = decode(encode(HttpRequest("r", spec, ("mux/1",))))
    assert isinstance(fast, HttpRequest) and fast.caps == ("mux/1",)


@pytest.mark.parametrize(
    "payload",
    [
        '{"event":"relay.mux","n":1,"ts":0,"items":[]}',
        '{"event":"relay.mux","m":"e","n":0,"ts":0,"items":[]}',
        '{"event":"relay.mux","m":"e","n":1,"ts":0,"items":[{"id":"a","k":"what"}]}',
        '{"event":"relay.mux","m":"e","n":1,"ts":0,"items":[{"id":true,"k":"accepted"}]}',
        '{"event":"relay.mux","m":"e","n":1,"ts":0,"items":[{"id":"a","k":"lines","lines":[1]}]}',
        '{"event":"relay.mux.ack","m":"e","upto":-1}',
        '{"event":"relay.mux","m":"e","n":3,"lo":4,"ts":0,"items":[]}',
        '{"event":"relay.mux.ack","m":"e","upto":1,"missing":["2"]}',
        '{"event":"relay.http","id":"r","caps":"mux/1","req":{"service":"ollama"}}',
    ],
    ids=[
        "no-epoch",
        "n-zero",
        "kind",
        "bool-id",
        "line-not-str",
        "negative",
        "lo-above-n",
        "str-missing",
        "caps",
    ],
)
def test_malformed_fast_path_frames_raise_frame_error(payload: str) -> None:
    with pytest.raises(FrameError):
        decode(payload)


def test_receiver_drops_duplicates_and_lists_gaps_until_repaired() -> None:
    rx = MuxReceiver()
    assert [rx.accept("e", n) for n in (1, 3, 3, 5)] == [True, True, False, True]
    assert rx.upto == 1 and rx.missing() == (2, 4)
    rx.note_last("e", 7)
    assert rx.missing() == (2, 4, 6, 7)
    for n in (2, 4, 6, 7):
        rx.accept("e", n)
    assert rx.ack() == MuxAck("e", 7, ()) and not rx.has_gap
    assert rx.accept("e2", 1) and rx.upto == 1  # a new relay epoch starts over


def test_a_receiver_new_to_an_epoch_asks_for_nothing_below_the_relays_lo() -> None:
    rx = MuxReceiver()
    # An earlier client at this address acknowledged up to 56: the relay keeps 57 on.
    assert rx.accept("e", 58, lo=57)
    assert rx.ack() == MuxAck("e", 56, (57,))
    assert rx.accept("e", 57, lo=57) and rx.ack() == MuxAck("e", 58, ())
    rx.note_last("e", 60, lo=61)  # all acknowledged (by us): nothing to ask
    assert rx.ack() == MuxAck("e", 60, ())
    assert not rx.accept("e", 59, lo=61)  # below what the relay keeps: a late duplicate


def test_ack_policy_is_prompt_for_gaps_and_duplicates_and_lazy_otherwise() -> None:
    policy = AckPolicy(0.25)
    policy.arrived(10.0, gap=False, duplicate=False)
    assert policy.due_at == 10.25
    policy.arrived(10.1, gap=True, duplicate=False)
    assert policy.due_at == pytest.approx(10.13)
    policy.arrived(10.11, gap=False, duplicate=True)
    assert policy.due_at == 10.11
    policy.sent()
    assert policy.due_at is None


def test_items_become_the_seed_frames_a_stream_reads() -> None:
    lines = to_frames(MuxLines("a", 3, ("x", "y"), (4,)), 99)
    assert isinstance(lines, ResponseLines)
    assert [(e.seq, e.line, e.truncated, e.ts) for e in lines.lines] == [
        (3, "x", False, 99),
        (4, "y", True, 99),
    ]
    end = to_frames(END, 1)
    assert isinstance(end, FastEnd) and end.begun and end.last_seq == 2
    assert to_frames(MuxAccepted("a"), 5) == Keepalive("a", 5)


def test_item_size_is_the_encoded_size() -> None:
    item = MuxLines("a", 1, ('{"response":"é"}',))
    message = MuxMessage("e", 1, 0, (item,))
    assert item_size(item) == len(encode(message).encode()) - len(
        encode(MuxMessage("e", 1, 0, ())).encode()
    )
