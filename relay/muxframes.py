"""Fast-path DM frames: one message carries items of several streams of one peer, repairably.

The fast path (`mux/1`) is negotiated: the relay lists it in `relay.info` `offers`, and a peer
asks for it per request with `caps` in `relay.http`. The relay then sends `relay.mux`
messages, numbered `n` = 1, 2, 3... per peer within one relay `epoch` (`m`), each holding
`accepted` / `begin` / `lines` / `end` items of any of the peer's streams;
`relay.mux.keepalive` tells the highest `n` sent while the peer's streams are silent; both say
the oldest `n` the relay still keeps (`lo`), for a client that joins an epoch midway. The peer
answers with cumulative `relay.mux.ack`s whose `missing` list asks for resends. This module is
self-contained (its own validation) so `relay.frames` can delegate to it without the two
importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from relay.errors import FrameError

#: The capability name a peer puts in `caps` and the relay in `offers`.
MUX_CAP = "mux/1"
#: At most this many message numbers in one ack's `missing` list.
MAX_MISSING = 256
EVENTS = frozenset({"relay.mux", "relay.mux.keepalive", "relay.mux.ack"})
MuxId: TypeAlias = str | int


@dataclass(frozen=True, slots=True)
class MuxAccepted:
    """The relay has the request (running or queued): the peer stops resending it."""

    id: MuxId


@dataclass(frozen=True, slots=True)
class MuxBegin:
    """A stream's upstream answered: status and lower-cased headers."""

    id: MuxId
    ok: bool
    status: int
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class MuxLines:
    """Consecutive lines of one stream, the first numbered `seq`; `cut` lists truncated seqs."""

    id: MuxId
    seq: int
    lines: tuple[str, ...]
    cut: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MuxEnd:
    """A stream's end summary (the seed's `relay.response.end` fields) and whether it began."""

    id: MuxId
    ok: bool
    bytes: int
    last_seq: int
    lines: int
    eot_seen: bool
    done_seen: bool
    truncated: bool
    error: str | None
    t_ms: int
    begun: bool


MuxItem: TypeAlias = MuxAccepted | MuxBegin | MuxLines | MuxEnd


@dataclass(frozen=True, slots=True)
class MuxMessage:
    """`relay.mux`: message `n` of relay epoch `epoch` to one peer, with its items.

    `lo`: the oldest number the relay still keeps for this peer (every one below was
    acknowledged), so a client that joins an epoch midway does not ask for them (0: unsaid).
    """

    epoch: str
    n: int
    ts: int
    items: tuple[MuxItem, ...]
    lo: int = 0


@dataclass(frozen=True, slots=True)
class MuxKeepalive:
    """`relay.mux.keepalive`: the peer's streams are alive; `last` is the highest `n` sent,
    `lo` as in `MuxMessage`."""

    epoch: str
    last: int
    ts: int
    lo: int = 0


@dataclass(frozen=True, slots=True)
class MuxAck:
    """`relay.mux.ack`: every `n <= upto` arrived; `missing` ones (above `upto`) did not."""

    epoch: str
    upto: int
    missing: tuple[int, ...] = ()


MuxFrame: TypeAlias = MuxMessage | MuxKeepalive | MuxAck


def decode_obj(obj: Mapping[str, Any]) -> MuxFrame:
    """Parse a decoded JSON object whose `event` is one of `EVENTS`; `FrameError` otherwise."""
    event = obj.get("event")
    epoch = _need(obj, "m", str)
    if not 0 < len(epoch) <= 64:
        raise FrameError("'m' must be 1-64 characters")
    if event == "relay.mux":
        items = obj.get("items")
        if not isinstance(items, list):
            raise FrameError("'items' must be a list")
        parsed = tuple(_item(i) for i in items)
        n, lo = _count(obj, "n", 1), _count(obj, "lo", 0)
        if lo > n:
            raise FrameError("'lo' must not exceed 'n'")
        return MuxMessage(epoch, n, _count(obj, "ts", 0), parsed, lo)
    if event == "relay.mux.keepalive":
        last, lo = _count(obj, "last", 0), _count(obj, "lo", 0)
        if lo > last + 1:
            raise FrameError("'lo' must not exceed 'last' + 1")
        return MuxKeepalive(epoch, last, _count(obj, "ts", 0), lo)
    if event == "relay.mux.ack":
        raw = obj.get("missing", [])
        if not isinstance(raw, list) or len(raw) > MAX_MISSING:
            raise FrameError(f"'missing' must be a list of at most {MAX_MISSING} numbers")
        missing = tuple(_int(v, "missing") for v in raw)
        return MuxAck(epoch, _count(obj, "upto", 0), missing)
    raise FrameError(f"unknown event {str(event)[:64]!r}")


def to_wire(frame: MuxFrame) -> dict[str, Any]:
    """The JSON object for one fast-path frame."""
    match frame:
        case MuxMessage(epoch=m, n=n, ts=ts, items=items, lo=lo):
            keeps = {"lo": lo} if lo else {}
            return {"event": "relay.mux", "m": m, "n": n, "ts": ts, **keeps,
                    "items": [item_wire(i) for i in items]}  # fmt: skip
        case MuxKeepalive(epoch=m, last=last, ts=ts, lo=lo):
            keeps = {"lo": lo} if lo else {}
            return {"event": "relay.mux.keepalive", "m": m, "last": last, "ts": ts, **keeps}
        case MuxAck(epoch=m, upto=upto, missing=missing):
            return {"event": "relay.mux.ack", "m": m, "upto": upto, "missing": list(missing)}
    raise TypeError(f"not a fast-path frame: {type(frame).__name__}")


def item_wire(item: MuxItem) -> dict[str, Any]:
    """The JSON object for one item of a `relay.mux` message."""
    match item:
        case MuxAccepted(id=rid):
            return {"id": rid, "k": "accepted"}
        case MuxBegin(id=rid, ok=ok, status=status, headers=headers):
            return {"id": rid, "k": "begin", "ok": ok, "status": status, "headers": dict(headers)}
        case MuxLines(id=rid, seq=seq, lines=lines, cut=cut):
            wire: dict[str, Any] = {"id": rid, "k": "lines", "seq": seq, "lines": list(lines)}
            if cut:
                wire["cut"] = list(cut)
            return wire
        case MuxEnd():
            return {
                "id": item.id,
                "k": "end",
                "ok": item.ok,
                "bytes": item.bytes,
                "last_seq": item.last_seq,
                "lines": item.lines,
                "eot_seen": item.eot_seen,
                "done_seen": item.done_seen,
                "truncated": item.truncated,
                "error": item.error,
                "t_ms": item.t_ms,
                "begun": item.begun,
            }
    raise TypeError(f"not a fast-path item: {type(item).__name__}")


def item_size(item: MuxItem) -> int:
    """UTF-8 bytes the item adds to a message's `items` list (without the comma)."""
    return len(json.dumps(item_wire(item), separators=(",", ":"), ensure_ascii=False).encode())


def message_overhead(epoch: str, n: int, ts: int, lo: int = 0) -> int:
    """UTF-8 bytes of a `relay.mux` message with no items."""
    wire = to_wire(MuxMessage(epoch, n, ts, (), lo))
    return len(json.dumps(wire, separators=(",", ":")).encode())


def _item(raw: object) -> MuxItem:
    if not isinstance(raw, dict):
        raise FrameError("each item must be an object")
    rid = raw.get("id")
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        raise FrameError("an item needs an 'id'")
    kind = raw.get("k")
    if kind == "accepted":
        return MuxAccepted(rid)
    if kind == "begin":
        headers = raw.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise FrameError("'headers' must map strings to strings")
        return MuxBegin(rid, _need(raw, "ok", bool), _count(raw, "status", 0), dict(headers))
    if kind == "lines":
        lines = raw.get("lines")
        if not isinstance(lines, list) or not all(isinstance(s, str) for s in lines):
            raise FrameError("'lines' must be a list of strings")
        cut = raw.get("cut", [])
        if not isinstance(cut, list):
            raise FrameError("'cut' must be a list")
        seqs = tuple(_int(c, "cut") for c in cut)
        return MuxLines(rid, _count(raw, "seq", 1), tuple(lines), seqs)
    if kind == "end":
        error = raw.get("error")
        if error is not None and not isinstance(error, str):
            raise FrameError("'error' must be a string or null")
        return MuxEnd(
            id=rid,
            ok=_need(raw, "ok", bool),
            bytes=_count(raw, "bytes", 0),
            last_seq=_count(raw, "last_seq", 0),
            lines=_count(raw, "lines", 0),
            eot_seen=_flag(raw, "eot_seen"),
            done_seen=_flag(raw, "done_seen"),
            truncated=_flag(raw, "truncated"),
            error=error,
            t_ms=_count(raw, "t_ms", 0),
            begun=_flag(raw, "begun"),
        )
    raise FrameError(f"unknown item kind {str(kind)[:32]!r}")


def _need(obj: Mapping[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise FrameError(f"{key!r} is missing or not a {kind.__name__}")
    return value


def _int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise FrameError(f"{key!r} must hold non-negative integers")
    return value


def _count(obj: Mapping[str, Any], key: str, minimum: int) -> int:
    value = obj.get(key, minimum)
    number = _int(value, key)
    if number < minimum:
        raise FrameError(f"{key!r} must be at least {minimum}")
    return number


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise FrameError(f"{key!r} must be a boolean")
    return value
