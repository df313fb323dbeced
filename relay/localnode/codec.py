"""The protobuf codec for NKN client frames: `ClientMessage`, `OutboundMessage`, `InboundMessage`.

Hand-written (proto3 wire format: varints and length-delimited fields only), so the local node
needs no protoc step. Field numbers follow nkn's `pb/clientmessage.proto`; a default value
(0, empty) is left off the wire, as proto3 does, and unknown fields are skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from relay.localnode.errors import CodecError

# ClientMessageType
OUTBOUND_MESSAGE = 0
INBOUND_MESSAGE = 1
RECEIPT = 2
# CompressionType
COMPRESSION_NONE = 0
COMPRESSION_ZLIB = 1

# The real node refuses decompressed messages over 4 MiB; we allow more (tests send ~4 MB
# payloads plus envelope) but still bound zlib output so a tiny frame cannot inflate to gigabytes.
MAX_INFLATED_BYTES = 16 * 1024 * 1024

_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf base-128 varint."""
    if value < 0:
        # proto3 int32 negatives are sign-extended to 64 bits on the wire.
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise CodecError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CodecError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield `(field_number, value)` for each field; values are ints or raw bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise CodecError("field number 0")
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire_type == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise CodecError(f"field {number} runs past the end of the message")
            yield number, data[pos : pos + size]
            pos += size
        elif wire_type in (_I64, _I32):
            width = 8 if wire_type == _I64 else 4
            if pos + width > len(data):
                raise CodecError(f"field {number} runs past the end of the message")
            yield number, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise CodecError(f"unsupported wire type {wire_type} for field {number}")


def _bytes_field(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | _LEN) + encode_varint(len(value)) + value


def _int_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3 | _VARINT) + encode_varint(value) if value else b""


def _as_bytes(number: int, value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise CodecError(f"field {number} should be length-delimited")
    return value


def _as_int(number: int, value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise CodecError(f"field {number} should be a varint")
    return value


def _as_str(number: int, value: int | bytes) -> str:
    try:
        return _as_bytes(number, value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"field {number} is not valid UTF-8") from exc


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """The outer frame of every binary websocket message, both directions."""

    message_type: int
    message: bytes
    compression_type: int = COMPRESSION_NONE

    @classmethod
    def decode(cls, data: bytes) -> ClientMessage:
        """Parse a binary websocket frame."""
        message_type, message, compression = OUTBOUND_MESSAGE, b"", COMPRESSION_NONE
        for number, value in iter_fields(data):
            if number == 1:
                message_type = _as_int(number, value)
            elif number == 2:
                message = _as_bytes(number, value)
            elif number == 3:
                compression = _as_int(number, value)
        return cls(message_type, message, compression)

    def encode(self) -> bytes:
        """Serialize for a binary websocket frame."""
        return (
            _int_field(1, self.message_type)
            + (_bytes_field(2, self.message) if self.message else b"")
            + _int_field(3, self.compression_type)
        )

    def body(self) -> bytes:
        """The inner message, inflated when the sender compressed it."""
        if self.compression_type == COMPRESSION_NONE:
            return self.message
        if self.compression_type != COMPRESSION_ZLIB:
            raise CodecError(f"unknown compression type {self.compression_type}")
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(self.message, MAX_INFLATED_BYTES)
        except zlib.error as exc:
            raise CodecError(f"bad zlib data: {exc}") from exc
        if inflater.unconsumed_tail:
            raise CodecError(f"inflated message exceeds {MAX_INFLATED_BYTES} bytes")
        return body


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A client's send request: one payload for all `dests`, or one payload per dest."""

    dest: str = ""
    payload: bytes = b""
    dests: tuple[str, ...] = ()
    max_holding_seconds: int = 0
    nonce: int = 0
    block_hash: bytes = b""
    signatures: tuple[bytes, ...] = ()
    payloads: tuple[bytes, ...] = field(default=())

    @classmethod
    def decode(cls, data: bytes) -> OutboundMessage:
        """Parse the body of an OUTBOUND_MESSAGE ClientMessage."""
        dest, payload, holding, nonce, block_hash = "", b"", 0, 0, b""
        dests: list[str] = []
        signatures: list[bytes] = []
        payloads: list[bytes] = []
        for number, value in iter_fields(data):
            if number == 1:
                dest = _as_str(number, value)
            elif number == 2:
                payload = _as_bytes(number, value)
            elif number == 3:
                dests.append(_as_str(number, value))
            elif number == 4:
                holding = _as_int(number, value)
            elif number == 5:
                nonce = _as_int(number, value)
            elif number == 6:
                block_hash = _as_bytes(number, value)
            elif number == 7:
                signatures.append(_as_bytes(number, value))
            elif number == 8:
                payloads.append(_as_bytes(number, value))
        return cls(
            dest,
            payload,
            tuple(dests),
            holding,
            nonce,
            block_hash,
            tuple(signatures),
            tuple(payloads),
        )

    def encode(self) -> bytes:
        """Serialize (the client side of the wire; used by tests)."""
        parts = [_bytes_field(1, self.dest.encode()) if self.dest else b""]
        parts.append(_bytes_field(2, self.payload) if self.payload else b"")
        parts += [_bytes_field(3, d.encode()) for d in self.dests]
        parts.append(_int_field(4, self.max_holding_seconds))
        parts.append(_int_field(5, self.nonce))
        parts.append(_bytes_field(6, self.block_hash) if self.block_hash else b"")
        parts += [_bytes_field(7, s) for s in self.signatures]
        parts += [_bytes_field(8, p) for p in self.payloads]
        return b"".join(parts)

    def routes(self) -> list[tuple[str, bytes]]:
        """Pair each destination with its payload, as the real node does.

        New clients send `dests`/`payloads`; old ones the single `dest`/`payload` fields. One
        payload goes to every destination; otherwise payload *i* is for destination *i*.
        """
        dests = list(self.dests) or ([self.dest] if self.dest else [])
        payloads = list(self.payloads) or [self.payload]
        if len(payloads) == 1:
            return [(d, payloads[0]) for d in dests]
        if len(payloads) == len(dests):
            return list(zip(dests, payloads, strict=True))
        raise CodecError(f"{len(payloads)} payloads for {len(dests)} destinations")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message delivered to a client: who sent it and the end-to-end payload, untouched."""

    src: str
    payload: bytes
    prev_hash: bytes = b""

    @classmethod
    def decode(cls, data: bytes) -> InboundMessage:
        """Parse the body of an INBOUND_MESSAGE ClientMessage (used by tests)."""
        src, payload, prev_hash = "", b"", b""
        for number, value in iter_fields(data):
            if number == 1:
                src = _as_str(number, value)
            elif number == 2:
                payload = _as_bytes(number, value)
            elif number == 3:
                prev_hash = _as_bytes(number, value)
        return cls(src, payload, prev_hash)

    def encode(self) -> bytes:
        """Serialize. `prev_hash` stays empty so clients send no receipts."""
        return (
            (_bytes_field(1, self.src.encode()) if self.src else b"")
            + (_bytes_field(2, self.payload) if self.payload else b"")
            + (_bytes_field(3, self.prev_hash) if self.prev_hash else b"")
        )


def inbound_frame(src: str, payload: bytes) -> bytes:
    """The complete binary frame that delivers `payload` from `src`, never compressed (trap 5)."""
    return ClientMessage(INBOUND_MESSAGE, InboundMessage(src, payload).encode()).encode()
