"""The hand-written protobuf codec against known bytes and hostile input."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.localnode.codec import (
    COMPRESSION_ZLIB,
    INBOUND_MESSAGE,
    MAX_INFLATED_BYTES,
    OUTBOUND_MESSAGE,
    ClientMessage,
    InboundMessage,
    OutboundMessage,
    encode_varint,
    inbound_frame,
)
from relay.localnode.errors import CodecError


@pytest.mark.parametrize(
    ("value", "wire"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (300, b"\xac\x02"), (-1, b"\xff" * 9 + b"\x01")],
    ids=["zero", "one", "max-1-byte", "300", "negative-int32"],
)
def test_varint_matches_protobuf_wire_format(value: int, wire: bytes) -> None:
    assert encode_varint(value) == wire


def test_client_message_known_bytes() -> None:
    # field 1 varint 1, field 2 bytes "ab"; compression NONE is a default and left off.
    assert ClientMessage(INBOUND_MESSAGE, b"ab").encode() == b"\x08\x01\x12\x02ab"
    assert ClientMessage.decode(b"\x08\x01\x12\x02ab") == ClientMessage(INBOUND_MESSAGE, b"ab")


def test_inbound_frame_leaves_prev_hash_empty_so_clients_send_no_receipts() -> None:
    frame = ClientMessage.decode(inbound_frame("a." + "ab" * 32, b"\x00payload"))
    assert frame.message_type == INBOUND_MESSAGE
    assert frame.compression_type == 0
    assert InboundMessage.decode(frame.body()) == InboundMessage("a." + "ab" * 32, b"\x00payload")


def test_outbound_message_round_trip_with_every_field() -> None:
    message = OutboundMessage(
        dests=("x." + "11" * 32, "y." + "22" * 32),
        max_holding_seconds=30,
        nonce=123456,
        block_hash=b"\x01" * 32,
        signatures=(b"s" * 64, b"t" * 64),
        payloads=(b"one", b"two"),
    )
    assert OutboundMessage.decode(message.encode()) == message


@pytest.mark.parametrize(
    ("message", "routes"),
    [
        (OutboundMessage(dests=("a", "b"), payloads=(b"p",)), [("a", b"p"), ("b", b"p")]),
        (OutboundMessage(dests=("a", "b"), payloads=(b"1", b"2")), [("a", b"1"), ("b", b"2")]),
        (OutboundMessage(dest="a", payload=b"legacy"), [("a", b"legacy")]),
    ],
    ids=["one-payload-for-all", "payload-per-dest", "legacy-fields"],
)
def test_routes_pair_destinations_with_payloads(
    message: OutboundMessage, routes: list[tuple[str, bytes]]
) -> None:
    assert message.routes() == routes


def test_routes_refuse_mismatched_payload_count() -> None:
    message = OutboundMessage(dests=("a", "b", "c"), payloads=(b"1", b"2"))
    with pytest.raises(CodecError, match="2 payloads for 3 destinations"):
        message.routes()


def test_zlib_body_is_inflated() -> None:
    inner = OutboundMessage(dests=("a",), payloads=(b"x" * 1000,)).encode()
    outer = ClientMessage(OUTBOUND_MESSAGE, zlib.compress(inner), COMPRESSION_ZLIB)
    decoded = ClientMessage.decode(outer.encode())
    assert OutboundMessage.decode(decoded.body()).payloads == (b"x" * 1000,)


def test_zlib_bomb_is_refused() -> None:
    bomb = zlib.compress(b"\x00" * (MAX_INFLATED_BYTES + 1))
    with pytest.raises(CodecError, match="exceeds"):
        ClientMessage(OUTBOUND_MESSAGE, bomb, COMPRESSION_ZLIB).body()


@pytest.mark.parametrize(
    "data",
    [b"\x08", b"\x12\x05ab", b"\x0b", b"\x00\x01", b"\x08" + b"\xff" * 11, b"\x1a\x02\xff\xfe"],
    ids=[
        "truncated-varint",
        "short-bytes",
        "group-wire-type",
        "field-zero",
        "long-varint",
        "bad-utf8",
    ],
)
def test_malformed_frames_raise_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        OutboundMessage.decode(data)


@given(st.binary(max_size=256))
def test_decoding_arbitrary_bytes_raises_only_codec_error(data: bytes) -> None:
    try:
        outer = ClientMessage.decode(data)
        OutboundMessage.decode(outer.body()).routes()
        InboundMessage.decode(data)
    except CodecError:
        pass
