"""Relay DM frames: one frozen dataclass per event of the DM API and its one `decode`/`encode` pair.

Field names and shapes follow the compatibility contract (`relay-dm-api.md`, the seed's section
3) exactly; this project's additions are optional fields (`id` echoed on pong/info, a per-line
`truncated` flag) and the `relay.cancel` event. `decode` validates everything and raises
`FrameError` (with the request id when one can be read); only typed frames travel inward.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from relay.errors import FrameError
from relay.muxframes import EVENTS as MUX_EVENTS
from relay.muxframes import MuxFrame, MuxKeepalive, MuxMessage, decode_obj, to_wire

Id: TypeAlias = str | int
#: NKN refuses messages over 4,000,000 bytes (nkn-sdk's limit); nothing bigger can arrive.
MAX_INBOUND_B = 4_000_000
MAX_ID_CHARS = 256
MAX_TIMEOUT_MS = 3_600_000
DEFAULT_TIMEOUT_MS = 30_000
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
STREAM_TRUE = frozenset({"chunks", "dm", "true", "1", "on", "yes", "stream", "lines"})
STREAM_FALSE = frozenset({"", "0", "false", "off", "no", "none"})
_ID_SNIFF = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.){1,256}"|-?\d{1,18})')


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """The `req` object of `relay.http`: where to send the HTTP call and how."""

    path: str = "/"
    method: str = "GET"
    service: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    body_b64: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    verify: bool | None = None
    stream: bool = False

    def body(self) -> bytes | None:
        """The raw request body from `body_b64`, or None."""
        return None if self.body_b64 is None else base64.b64decode(self.body_b64)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """`relay.http`: a peer asks the relay to perform one HTTP call."""

    id: Id
    req: HttpSpec
    #: Transports the peer can do beyond the seed API (`relay.muxframes.MUX_CAP`).
    caps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    """`relay.ping`: liveness probe; the seed sent it without an id."""

    id: Id | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """`relay.pong`: answer to a ping with the relay's clock (ms) and NKN address."""

    ts: int
    addr: str
    id: Id | None = None


@dataclass(frozen=True, slots=True)
class InfoRequest:
    """`relay.info` sent by a peer: asks what the relay offers."""

    id: Id | None = None


@dataclass(frozen=True, slots=True)
class Info:
    """`relay.info` sent by the relay: services, TLS default, workers and body cap.

    `peer_limit` (requests one peer may have admitted) and `keepalive_ms` are this project's
    additions, so that a page can size a run to what the relay admits and tell a silent relay
    from a slow stream; an older relay omits them.
    """

    services: tuple[str, ...]
    verify_default: bool
    workers: int
    max_body_b: int
    id: Id | None = None
    peer_limit: int | None = None
    keepalive_ms: int | None = None
    #: Transports beyond the seed API the relay offers (`relay.muxframes.MUX_CAP`).
    offers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cancel:
    """`relay.cancel` (this project's addition): stop a running request and free its slot."""

    id: Id


@dataclass(frozen=True, slots=True)
class ResponseBegin:
    """`relay.response.begin`: the upstream answered; status and lower-cased headers."""

    id: Id
    ok: bool
    status: int
    headers: Mapping[str, str]
    ts: int


@dataclass(frozen=True, slots=True)
class LineEntry:
    """One line of a streamed body (no newline) with its sequence number and arrival time (ms)."""

    seq: int
    ts: int
    line: str
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ResponseLines:
    """`relay.response.lines`: a batch of consecutive lines."""

    id: Id
    lines: tuple[LineEntry, ...]


@dataclass(frozen=True, slots=True)
class Keepalive:
    """`relay.response.keepalive`: the request is alive but the upstream is silent."""

    id: Id
    ts: int


@dataclass(frozen=True, slots=True)
class ResponseEnd:
    """`relay.response.end`: the summary every streamed request ends with, even on failure."""

    id: Id
    ok: bool
    bytes: int
    last_seq: int
    lines: int
    eot_seen: bool
    done_seen: bool
    truncated: bool
    error: str | None
    t_ms: int


@dataclass(frozen=True, slots=True)
class Response:
    """`relay.response`: a whole non-streamed answer, or a refusal (`ok:false`, `error`)."""

    id: Id | None
    ok: bool
    status: int
    headers: Mapping[str, str]
    json: Any
    body_b64: str | None
    truncated: bool
    error: str | None


Frame: TypeAlias = (
    HttpRequest
    | Ping
    | Pong
    | InfoRequest
    | Info
    | Cancel
    | ResponseBegin
    | ResponseLines
    | Keepalive
    | ResponseEnd
    | Response
    | MuxFrame
)
#: Frames only the relay sends; a relay must never answer them (two relays would loop).
REPLY_FRAMES = (
    Pong,
    Info,
    ResponseBegin,
    ResponseLines,
    Keepalive,
    ResponseEnd,
    Response,
    MuxMessage,
    MuxKeepalive,
)


def encode(frame: Frame) -> str:
    """Serialise a frame to the compact JSON text sent as one DM."""
    return json.dumps(_to_wire(frame), separators=(",", ":"), ensure_ascii=False)


def encoded_size(frame: Frame) -> int:
    """Size in bytes (UTF-8) of the DM that carries `frame`."""
    return len(encode(frame).encode("utf-8"))


def decode(payload: str, *, max_bytes: int = MAX_INBOUND_B) -> Frame:
    """Parse one DM into a frame; raise `FrameError` (with the id when readable) otherwise."""
    if len(payload) > max_bytes or len(payload.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError(f"message over {max_bytes} bytes", _sniff_id(payload))
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise FrameError("not JSON", _sniff_id(payload)) from exc
    if not isinstance(obj, dict):
        raise FrameError("a frame must be a JSON object")
    raw_id = obj.get("id")
    rid = raw_id if _valid_id(raw_id) else None
    event = obj.get("event")
    if not isinstance(event, str):
        raise FrameError("missing 'event'", rid)
    if event in MUX_EVENTS:
        return decode_obj(obj)
    parser = _PARSERS.get(event)
    if parser is None:
        raise FrameError(f"unknown event {event[:64]!r}", rid)
    if raw_id is not None and rid is None:
        raise FrameError("'id' must be a string (1-256 chars) or an integer")
    try:
        frame: Frame = parser(obj, rid)
    except FrameError as exc:
        raise FrameError(exc.reason, rid) from None
    return frame


def _valid_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**63
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate could not be echoed back in a reply
    except UnicodeEncodeError:
        return False
    return True


def _sniff_id(payload: str) -> Id | None:
    """Best effort: find `"id": ...` near the start of a message that does not parse."""
    match = _ID_SNIFF.search(payload[:4096])
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if _valid_id(value) else None


def _need_id(rid: Id | None) -> Id:
    if rid is None:
        raise FrameError("missing 'id'")
    return rid


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = obj.get(key, default)
    if value is None:
        return default
    # bool is an int subclass; a JSON true must not pass for a number.
    if isinstance(value, bool) and kind in (int, (int,)):
        raise FrameError(f"{key!r} must be {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise FrameError(f"{key!r} must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _str_map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _get(obj, key, dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise FrameError(f"{key!r} must map strings to strings")
    return dict(value)


def _stream_flag(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in STREAM_TRUE:
            return True
        if text in STREAM_FALSE:
            return False
    raise FrameError("'stream' must be a boolean or one of " + ", ".join(sorted(STREAM_TRUE)))


def _parse_spec(raw: object) -> HttpSpec:
    if not isinstance(raw, dict):
        raise FrameError("'req' must be an object")
    service = _get(raw, "service", str, None)
    url = _get(raw, "url", str, None)
    if (service is None) == (url is None):
        raise FrameError("give exactly one of 'service' or 'url'")
    method = _get(raw, "method", str, "GET").upper()
    if method not in METHODS:
        raise FrameError(f"method {method[:16]!r} not supported")
    headers = _str_map(raw, "headers")
    body_b64 = _get(raw, "body_b64", str, None)
    if body_b64 is not None:
        if raw.get("json") is not None:
            raise FrameError("give 'json' or 'body_b64', not both")
        try:
            base64.b64decode(body_b64, validate=True)
        except binascii.Error as exc:
            raise FrameError("'body_b64' is not valid base64") from exc
    timeout_ms = _get(raw, "timeout_ms", (int, float), DEFAULT_TIMEOUT_MS)
    if isinstance(timeout_ms, bool) or not 0 < timeout_ms <= MAX_TIMEOUT_MS:
        raise FrameError(f"'timeout_ms' must be a number in 1..{MAX_TIMEOUT_MS}")
    # The original also accepted the header x-relay-stream to ask for streaming frames.
    header_stream = next((v for k, v in headers.items() if k.lower() == "x-relay-stream"), None)
    stream = _stream_flag(raw.get("stream"))
    if header_stream is not None and not stream:
        stream = _stream_flag(header_stream)
    return HttpSpec(
        path=_get(raw, "path", str, "/"),
        method=method,
        service=service,
        url=url,
        headers=headers,
        json=raw.get("json"),
        body_b64=body_b64,
        timeout_ms=int(timeout_ms),
        verify=_get(raw, "verify", bool, None),
        stream=stream,
    )


def _parse_lines(raw: object) -> tuple[LineEntry, ...]:
    if not isinstance(raw, list):
        raise FrameError("'lines' must be a list")
    entries = []
    for item in raw:
        if not isinstance(item, dict):
            raise FrameError("each line must be an object")
        entries.append(
            LineEntry(
                seq=_need(item, "seq", int),
                ts=_need(item, "ts", int),
                line=_need(item, "line", str),
                truncated=_get(item, "truncated", bool, False),
            )
        )
    return tuple(entries)


def _need(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if obj.get(key) is None:
        raise FrameError(f"missing {key!r}")
    return _get(obj, key, kind, None)


def _str_tuple(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """An optional list of short strings (capabilities); unknown entries are kept, not used."""
    value = _get(obj, key, list, [])
    if len(value) > 16 or not all(isinstance(v, str) and len(v) <= 64 for v in value):
        raise FrameError(f"{key!r} must be a list of at most 16 short strings")
    return tuple(value)


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value: str | None = _get(obj, key, str, None)
    return value


_PARSERS: dict[str, Any] = {
    "relay.http": lambda o, rid: HttpRequest(
        _need_id(rid), _parse_spec(o.get("req")), _str_tuple(o, "caps")
    ),
    "relay.ping": lambda o, rid: Ping(rid),
    "relay.pong": lambda o, rid: Pong(_need(o, "ts", int), _need(o, "addr", str), rid),
    "relay.info": lambda o, rid: (
        InfoRequest(rid)
        if "services" not in o
        else Info(
            services=tuple(str(s) for s in _get(o, "services", list, [])),
            verify_default=_need(o, "verify_default", bool),
            workers=_need(o, "workers", int),
            max_body_b=_need(o, "max_body_b", int),
            id=rid,
            peer_limit=_get(o, "peer_limit", int, None),
            keepalive_ms=_get(o, "keepalive_ms", int, None),
            offers=_str_tuple(o, "offers"),
        )
    ),
    "relay.cancel": lambda o, rid: Cancel(_need_id(rid)),
    "relay.response.begin": lambda o, rid: ResponseBegin(
        _need_id(rid),
        _need(o, "ok", bool),
        _need(o, "status", int),
        _str_map(o, "headers"),
        _get(o, "ts", int, 0),
    ),
    "relay.response.lines": lambda o, rid: ResponseLines(
        _need_id(rid), _parse_lines(o.get("lines"))
    ),
    "relay.response.keepalive": lambda o, rid: Keepalive(_need_id(rid), _get(o, "ts", int, 0)),
    "relay.response.end": lambda o, rid: ResponseEnd(
        id=_need_id(rid),
        ok=_need(o, "ok", bool),
        bytes=_get(o, "bytes", int, 0),
        last_seq=_get(o, "last_seq", int, 0),
        lines=_get(o, "lines", int, 0),
        eot_seen=_get(o, "eot_seen", bool, False),
        done_seen=_get(o, "done_seen", bool, False),
        truncated=_get(o, "truncated", bool, False),
        error=_opt_str(o, "error"),
        t_ms=_get(o, "t_ms", int, 0),
    ),
    "relay.response": lambda o, rid: Response(
        id=rid,
        ok=_need(o, "ok", bool),
        status=_get(o, "status", int, 0),
        headers=_str_map(o, "headers"),
        json=o.get("json"),
        body_b64=_opt_str(o, "body_b64"),
        truncated=_get(o, "truncated", bool, False),
        error=_opt_str(o, "error"),
    ),
}


def _with_id(wire: dict[str, Any], rid: Id | None) -> dict[str, Any]:
    if rid is not None:
        wire["id"] = rid
    return wire


def _spec_wire(spec: HttpSpec) -> dict[str, Any]:
    wire: dict[str, Any] = {"path": spec.path, "method": spec.method}
    if spec.service is not None:
        wire["service"] = spec.service
    if spec.url is not None:
        wire["url"] = spec.url
    wire["headers"] = dict(spec.headers)
    if spec.json is not None:
        wire["json"] = spec.json
    if spec.body_b64 is not None:
        wire["body_b64"] = spec.body_b64
    wire["timeout_ms"] = spec.timeout_ms
    if spec.verify is not None:
        wire["verify"] = spec.verify
    if spec.stream:
        wire["stream"] = "chunks"
    return wire


def _line_wire(entry: LineEntry) -> dict[str, Any]:
    wire: dict[str, Any] = {"seq": entry.seq, "ts": entry.ts, "line": entry.line}
    if entry.truncated:
        wire["truncated"] = True
    return wire


def _to_wire(frame: Frame) -> dict[str, Any]:
    match frame:
        case HttpRequest(id=rid, req=spec, caps=caps):
            request: dict[str, Any] = {"event": "relay.http", "id": rid, "req": _spec_wire(spec)}
            if caps:
                request["caps"] = list(caps)
            return request
        case Ping(id=rid):
            return _with_id({"event": "relay.ping"}, rid)
        case Pong(ts=ts, addr=addr, id=rid):
            return _with_id({"event": "relay.pong", "ts": ts, "addr": addr}, rid)
        case InfoRequest(id=rid):
            return _with_id({"event": "relay.info"}, rid)
        case Info():
            wire = {
                "event": "relay.info",
                "services": list(frame.services),
                "verify_default": frame.verify_default,
                "workers": frame.workers,
                "max_body_b": frame.max_body_b,
            }
            if frame.peer_limit is not None:
                wire["peer_limit"] = frame.peer_limit
            if frame.keepalive_ms is not None:
                wire["keepalive_ms"] = frame.keepalive_ms
            if frame.offers:
                wire["offers"] = list(frame.offers)
            return _with_id(wire, frame.id)
        case Cancel(id=rid):
            return {"event": "relay.cancel", "id": rid}
        case ResponseBegin():
            return {
                "event": "relay.response.begin",
                "id": frame.id,
                "ok": frame.ok,
                "status": frame.status,
                "headers": dict(frame.headers),
                "ts": frame.ts,
            }
        case ResponseLines(id=rid, lines=lines):
            return {
                "event": "relay.response.lines",
                "id": rid,
                "lines": [_line_wire(e) for e in lines],
            }
        case Keepalive(id=rid, ts=ts):
            return {"event": "relay.response.keepalive", "id": rid, "ts": ts}
        case ResponseEnd():
            return {
                "event": "relay.response.end",
                "id": frame.id,
                "ok": frame.ok,
                "bytes": frame.bytes,
                "last_seq": frame.last_seq,
                "lines": frame.lines,
                "eot_seen": frame.eot_seen,
                "done_seen": frame.done_seen,
                "truncated": frame.truncated,
                "error": frame.error,
                "t_ms": frame.t_ms,
            }
        case Response():
            return {
                "event": "relay.response",
                "id": frame.id,
                "ok": frame.ok,
                "status": frame.status,
                "headers": dict(frame.headers),
                "json": frame.json,
                "body_b64": frame.body_b64,
                "truncated": frame.truncated,
                "error": frame.error,
            }
        case _:
            return to_wire(frame)
