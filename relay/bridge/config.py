"""`BridgeConfig`: how the NKN bridge connects (seed, identifier, subclients, seed RPC node)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from relay.bridge.errors import BridgeConfigError

BRIDGE_DIR = Path(__file__).resolve().parent
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
#: The seed's NKN_NUM_SUBCLIENTS: on the real network each sub-client is a separate path.
SEED_NUM_SUBCLIENTS = 2


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_num_subclients(rpc_server_addrs: Sequence[str]) -> int:
    """Sub-clients to use when NKN_NUM_SUBCLIENTS is not set.

    The seed's 2 for the real network. When every seed address is on loopback (the local test
    node), 1: all sub-clients would reach the same single node, so extra ones add no path, yet
    each signs, encrypts and routes its own copy of every DM (half the DM rate with 2).
    """
    if rpc_server_addrs and all(_is_loopback(addr) for addr in rpc_server_addrs):
        return 1
    return SEED_NUM_SUBCLIENTS


def rpc_addrs_from_seed_ws(value: str, key: str = "NKN_BRIDGE_SEED_WS") -> tuple[str, ...]:
    """Turn the seed's `NKN_BRIDGE_SEED_WS` CSV into nkn-sdk `rpcServerAddr` URLs.

    The original relay passed this value as `seedWsAddr`, an option nkn-sdk 1.3.6 does not
    have, so it was silently ignored. The SDK joins the network through one seed JSON-RPC URL
    (`rpcServerAddr`), which then hands out the websocket address. So each entry is taken as
    that RPC URL: `ws://` becomes `http://`, `wss://` becomes `https://` (same host, port and
    path), a bare `host:port` becomes `http://host:port`. Several entries are tried in turn
    whenever the bridge (re)starts.
    """
    addrs: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if "://" not in entry:
            entry = f"http://{entry}"
        parts = urlsplit(entry)
        scheme = _SCHEMES.get(parts.scheme.lower())
        if scheme is None or not parts.hostname:
            raise BridgeConfigError(
                f"{key}: {raw.strip()!r} is not a seed address "
                "(expected http(s)://host:port/path, ws(s)://host:port or host:port)"
            )
        addrs.append(urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, "")))
    return tuple(addrs)


def _int(environ: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BridgeConfigError(f"{key}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BridgeConfigError(f"{key}: must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """Everything `NknTransport` needs; built once by the relay (or a test) and passed down."""

    seed_hex: str
    identifier: str | None = None
    num_subclients: int = SEED_NUM_SUBCLIENTS
    original_client: bool = False
    # Seed JSON-RPC URLs (nkn-sdk `rpcServerAddr`); empty = the SDK's mainnet default.
    rpc_server_addrs: tuple[str, ...] = ()
    tls: bool | None = None
    bridge_dir: Path = BRIDGE_DIR
    node_command: str = "node"
    queue_limit: int = 1000
    ready_timeout_s: float = 30.0
    probe_interval_s: float = 30.0
    probe_timeout_s: float = 10.0
    probe_failures_max: int = 2
    restart_backoff_min_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    close_timeout_s: float = 3.0
    # nkn-sdk's own websocket reconnect back-off (ms); None keeps the SDK's 1 s .. 64 s.
    reconnect_interval_min_ms: int | None = None
    reconnect_interval_max_ms: int | None = None

    def __post_init__(self) -> None:
        if not _HEX64.match(self.seed_hex):
            raise BridgeConfigError("NKN_SEED_HEX: expected 64 hex characters")
        if not 0 <= self.num_subclients <= 16:
            raise BridgeConfigError("NKN_NUM_SUBCLIENTS: must be between 0 and 16")
        if self.num_subclients == 0 and not self.original_client:
            raise BridgeConfigError("NKN_NUM_SUBCLIENTS: 0 needs original_client (no client left)")
        if self.identifier and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.identifier):
            raise BridgeConfigError(
                f"NKN_IDENTIFIER: {self.identifier!r} is not a valid identifier"
            )
        if self.queue_limit < 1:
            raise BridgeConfigError("queue_limit: must be at least 1")
        for name in ("ready_timeout_s", "probe_interval_s", "probe_timeout_s", "close_timeout_s"):
            if getattr(self, name) <= 0:
                raise BridgeConfigError(f"{name}: must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BridgeConfig:
        """Read the seed's keys NKN_SEED_HEX, NKN_NUM_SUBCLIENTS, NKN_BRIDGE_SEED_WS.

        Also the optional NKN_IDENTIFIER (address prefix) and NKN_RPC_SERVER_ADDR (one seed RPC
        URL, tried before the NKN_BRIDGE_SEED_WS entries). Errors name the key. Without
        NKN_NUM_SUBCLIENTS, see `default_num_subclients`.
        """
        seed = environ.get("NKN_SEED_HEX", "").strip()
        if not seed:
            raise BridgeConfigError("NKN_SEED_HEX: missing (64 hex characters, your NKN identity)")
        rpc = rpc_addrs_from_seed_ws(environ.get("NKN_RPC_SERVER_ADDR", ""), "NKN_RPC_SERVER_ADDR")
        rpc += rpc_addrs_from_seed_ws(environ.get("NKN_BRIDGE_SEED_WS", ""))
        return cls(
            seed_hex=seed,
            identifier=environ.get("NKN_IDENTIFIER", "").strip() or None,
            num_subclients=_int(environ, "NKN_NUM_SUBCLIENTS", default_num_subclients(rpc), 0, 16),
            rpc_server_addrs=rpc,
        )
