"""The relay's error hierarchy: every failure the engine or the peer client raises.

Bad settings are the settings layer's `farm.settings.SettingsError` (one line naming the flag,
variable or `.env` key); the NKN bridge has its own tree in `relay.bridge.errors`.

RelayError
├── FrameError           a malformed direct message (carries the request id when one was found)
├── PolicyError          a request the relay refuses (unknown service, url, peer, path)
└── ClientError          raised by the peer client (`relay.client`)
    ├── RemoteError      the relay answered `ok:false` (busy, forbidden, timeout, ...)
    ├── StreamGapError   frames were lost: seqs missing up to `last_seq`
    └── ClientTimeout    no answer within the total or idle timeout
"""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error the relay package raises."""


class FrameError(RelayError):
    """A direct message is not a valid frame.

    `request_id` is the peer's id when it could still be read, so the relay can answer with an
    error frame; `None` means the message can only be logged and dropped.
    """

    def __init__(self, reason: str, request_id: str | int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


class PolicyError(RelayError):
    """The relay refuses a request; `error` is the wire text and `status` an HTTP-like code."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


class ClientError(RelayError):
    """Base of the errors the peer client raises."""


class RemoteError(ClientError):
    """The relay reported a failure (`ok:false`); `error` is its wire text."""

    def __init__(self, error: str, status: int | None = None) -> None:
        super().__init__(error if status is None else f"{error} (status {status})")
        self.error = error
        self.status = status


class StreamGapError(ClientError):
    """A stream ended but some line frames never arrived (or arrived twice past the end)."""

    def __init__(self, missing: tuple[int, ...], last_seq: int) -> None:
        shown = ", ".join(str(s) for s in missing[:10])
        more = "" if len(missing) <= 10 else f" and {len(missing) - 10} more"
        super().__init__(f"stream cut: missing seq {shown}{more} of {last_seq}")
        self.missing = missing
        self.last_seq = last_seq


class ClientTimeout(ClientError):
    """The relay did not answer (or went silent past its keepalives) in time."""
