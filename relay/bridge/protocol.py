"""The bridge's wire lines: typed commands to `bridge.js` and the events it answers with.

One JSON object per line in each direction (see the header of bridge.js). Commands encode,
events decode; a line that is not a known event raises `ValueError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class OpenCommand:
    """Create the MultiClient (first line, once). Holds the seed: never log it."""

    seed: str
    identifier: str | None
    num_subclients: int
    original_client: bool
    rpc_server_addr: str | None
    tls: bool | None
    reconnect_interval_min_ms: int | None
    reconnect_interval_max_ms: int | None

    def encode(self) -> bytes:
        """The stdin line."""
        return _line(
            {
                "cmd": "open",
                "seed": self.seed,
                "identifier": self.identifier,
                "numSubClients": self.num_subclients,
                "originalClient": self.original_client,
                "rpcServerAddr": self.rpc_server_addr,
                "tls": self.tls,
                "reconnectIntervalMin": self.reconnect_interval_min_ms,
                "reconnectIntervalMax": self.reconnect_interval_max_ms,
            }
        )


@dataclass(frozen=True, slots=True)
class SendCommand:
    """Send one DM, fire and forget; the bridge answers `sent` or `send_error` with `id`.

    With `ack`, the DM asks the receiver for its delivery ACK; `acked` or `unacked` follows.
    """

    id: int
    dest: str
    data: str
    ack: bool = False

    def encode(self) -> bytes:
        """The stdin line."""
        line: dict[str, Any] = {"cmd": "send", "id": self.id, "dest": self.dest}
        if self.ack:
            line["ack"] = True
        line["data"] = self.data
        return _line(line)


@dataclass(frozen=True, slots=True)
class ProbeCommand:
    """Send a DM to ourselves; the bridge emits `probe` with the nonce when it comes back."""

    nonce: str

    def encode(self) -> bytes:
        """The stdin line."""
        return _line({"cmd": "probe", "nonce": self.nonce})


CLOSE_LINE = _line({"cmd": "close"})


@dataclass(frozen=True, slots=True)
class Ready:
    """The MultiClient is connected; `addr` is our NKN address."""

    addr: str
    connect_ms: int


@dataclass(frozen=True, slots=True)
class Message:
    """A DM arrived (MultiClient already stripped the `__N__.` prefix and deduplicated)."""

    src: str
    data: str


@dataclass(frozen=True, slots=True)
class Sent:
    """A DM was written to the node's websocket."""

    id: int


@dataclass(frozen=True, slots=True)
class SendError:
    """A DM could not be sent; `permanent` means retrying cannot help."""

    id: int
    error: str
    permanent: bool


@dataclass(frozen=True, slots=True)
class Acked:
    """The receiver acknowledged a DM sent with `ack`."""

    id: int


@dataclass(frozen=True, slots=True)
class Unacked:
    """No ACK will come for a DM sent with `ack` (the SDK stopped waiting, or it failed)."""

    id: int
    error: str


@dataclass(frozen=True, slots=True)
class ProbeEcho:
    """Our self-probe came back through the network."""

    nonce: str


@dataclass(frozen=True, slots=True)
class BridgeFailure:
    """The bridge reports an error; `fatal` ones are followed by its exit."""

    error: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Closed:
    """The bridge closed its client and is exiting."""


Event = Ready | Message | Sent | SendError | Acked | Unacked | ProbeEcho | BridgeFailure | Closed


def decode_event(line: bytes) -> Event:
    """Parse one stdout line of bridge.js."""
    try:
        obj = json.loads(line)
        kind = obj["event"]
        if kind == "ready":
            return Ready(str(obj["addr"]), int(obj.get("connect_ms", 0)))
        if kind == "message":
            return Message(str(obj["src"]), str(obj["data"]))
        if kind == "sent":
            return Sent(int(obj["id"]))
        if kind == "send_error":
            return SendError(int(obj["id"]), str(obj["error"]), bool(obj["permanent"]))
        if kind == "acked":
            return Acked(int(obj["id"]))
        if kind == "unacked":
            return Unacked(int(obj["id"]), str(obj.get("error", "")))
        if kind == "probe":
            return ProbeEcho(str(obj["nonce"]))
        if kind == "error":
            return BridgeFailure(str(obj["error"]), bool(obj.get("fatal", False)))
        if kind == "closed":
            return Closed()
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"bad bridge line: {line[:200]!r}") from exc
    raise ValueError(f"unknown bridge event {kind!r}")
