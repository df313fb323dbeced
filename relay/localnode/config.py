"""The configuration of the local NKN node (one frozen dataclass, built from CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# NKN's own limit is 4 MiB per message; the SDK's envelope and protobuf framing add a little,
# and Python websocket servers default to 1 MiB (trap 6), so allow a comfortable 16 MiB.
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
# Messages sent with max_holding_seconds to an offline address are kept at most this many.
DEFAULT_MAX_HELD = 1000


@dataclass(frozen=True, slots=True)
class LocalNodeConfig:
    """How the local test node listens and how much it accepts."""

    host: str = "127.0.0.1"
    port: int = 30002
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_held: int = DEFAULT_MAX_HELD
    verify_signatures: bool = True
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.max_frame_bytes < 4_300_000:
            raise ValueError("max_frame_bytes must hold a 4 MB NKN message (>= 4300000)")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("TLS needs both a certificate and a key file")

    @property
    def tls(self) -> bool:
        """Whether the node serves https/wss (for `getwssaddr` and browser pages)."""
        return self.certfile is not None
