"""`LocalNodeSettings`: how `python -m relay.localnode` listens and how much it accepts."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from farm.common.frontdoor import DoorSettings
from farm.settings import setting

# NKN's own limit is 4 MiB per message; the SDK's envelope and protobuf framing add a little,
# and Python websocket servers default to 1 MiB, too small for one, so allow a comfortable 16 MiB.
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
#: A websocket frame must hold one whole 4 MB NKN message with its framing.
MIN_FRAME_BYTES = 4_300_000
# Messages sent with max_holding_seconds to an offline address are kept at most this many.
DEFAULT_MAX_HELD = 1000


class LocalNodeSettings(DoorSettings):
    """The local NKN test node (a loopback test network, never the real NKN network).

    The client-facing limits are the front door's (`DoorSettings`), with its names and
    defaults; `relay.localnode.door` says how aiohttp and the node enforce each.
    `--client-max-body-size` caps a JSON-RPC body (0: no cap).
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

    @model_validator(mode="after")
    def _tls_pair(self) -> LocalNodeSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("--certfile and --keyfile go together (TLS needs both)")
        return self

    @property
    def tls(self) -> bool:
        """Whether the node serves https/wss (for `getwssaddr` and browser pages)."""
        return self.certfile is not None
