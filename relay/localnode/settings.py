"""`LocalNodeSettings`: how `python -m relay.localnode` listens and how much it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator

from farm.common.frontdoor import DoorSettings
from farm.settings import setting

# NKN's own limit is 4 MiB per message; the SDK's envelope and protobuf framing add a little,
# and Python websocket servers default to 1 MiB, too small for one, so allow a comfortable 16 MiB.
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
#: A websocket frame must hold one whole 4 MB NKN message with its framing.
MIN_FRAME_BYTES = 4_300_000
# Messages sent with max_holding_seconds to an offline address are kept at most this many.
DEFAULT_MAX_HELD = 1000
_HEX = frozenset("0123456789abcdef")


def _fraction(help_text: str) -> Any:
    """A fault fraction: 0 (the default, no fault) to 1 (every message of the direction)."""
    return setting(0.0, help=help_text, ge=0.0, le=1.0, allow_inf_nan=False, metavar="FRACTION")


class LocalNodeSettings(DoorSettings):
    """The local NKN test node (a loopback test network, never the real NKN network).

    The client-facing limits are the front door's (`DoorSettings`), with its names and
    defaults; `relay.localnode.door` says how aiohttp and the node enforce each.
    `--client-max-body-size` caps a JSON-RPC body (0: no cap).

    The `--fault-*` settings make it an imperfect network on purpose, per direction relative
    to `--subject-key` (`to`: messages to that key's addresses, `from`: messages from them;
    see `relay.localnode.faults`). By default no message is faulted.
    """

    prog = "python -m relay.localnode"
    summary = "A local NKN test network node for the real nkn-sdk (offline use and tests)."

    host: str = setting("127.0.0.1", help="address to bind")
    port: int = setting(30002, help="port for JSON-RPC and websocket together, 0 = any free",
                        ge=0, le=65535)  # fmt: skip
    certfile: Path | None = setting(
        None, help="TLS certificate: serve https/wss, for `getwssaddr` and HTTPS pages"
    )
    keyfile: Path | None = setting(None, help="TLS private key for --certfile")
    verify_signatures: bool = setting(
        True,
        flag="--no-verify-signatures",
        help="check the challenge signature on setClient (the flag accepts any)",
    )
    debug: bool = setting(False, help="log every registration")
    max_frame_bytes: int = setting(
        DEFAULT_MAX_FRAME_BYTES,
        help="largest websocket frame accepted, bytes (must hold one 4 MB NKN message)",
        ge=MIN_FRAME_BYTES,
    )
    max_held: int = setting(
        DEFAULT_MAX_HELD, help="messages held for offline addresses, at most", ge=0
    )

    # -- fault injection (tests and benchmarks) ---------------------------------------------
    subject_key: str = setting(
        "",
        help="public key (64 hex, or an NKN address) the fault directions are relative to: "
        "`to` = messages to its addresses, `from` = messages from them",
        metavar="KEY",
    )
    fault_seed: int = setting(0, help="seed of the fault decisions (same seed, same decisions)")
    fault_to_drop: float = _fraction("fraction of messages to the subject that are dropped")
    fault_to_duplicate: float = _fraction("fraction of messages to the subject delivered twice")
    fault_to_delay: float = _fraction("fraction of messages to the subject delayed")
    fault_to_reorder: float = _fraction(
        "fraction of messages to the subject delivered after the next one"
    )
    fault_from_drop: float = _fraction("fraction of messages from the subject that are dropped")
    fault_from_duplicate: float = _fraction("fraction of messages from the subject delivered twice")
    fault_from_delay: float = _fraction("fraction of messages from the subject delayed")
    fault_from_reorder: float = _fraction(
        "fraction of messages from the subject delivered after the next one"
    )
    fault_delay_ms: float = setting(
        200.0, help="how long a delayed message is held, ms", ge=0, allow_inf_nan=False
    )
    fault_reorder_window_ms: float = setting(
        500.0,
        help="a reordered message waits this long at most for the next one to pass it, ms",
        ge=0,
        allow_inf_nan=False,
    )

    @field_validator("subject_key")
    @classmethod
    def _subject_key(cls, value: str) -> str:
        key = value.strip().rsplit(".", 1)[-1].lower()
        if key and not (len(key) == 64 and set(key) <= _HEX):
            raise ValueError("expected a public key (64 hex digits) or an NKN address with one")
        return value.strip()

    @model_validator(mode="after")
    def _faults_need_a_subject(self) -> LocalNodeSettings:
        prefixes = ("fault_to_", "fault_from_")
        names = [n for n in type(self).model_fields if n.startswith(prefixes)]
        faulted = [n for n in names if getattr(self, n)]
        if faulted and not self.subject_key:
            flag = "--" + faulted[0].replace("_", "-")
            raise ValueError(
                f"{flag} needs --subject-key (the public key whose messages the faults hit)"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> LocalNodeSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("--certfile and --keyfile go together (TLS needs both)")
        return self

    @property
    def tls(self) -> bool:
        """Whether the node serves https/wss (for `getwssaddr` and browser pages)."""
        return self.certfile is not None
