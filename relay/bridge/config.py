"""`BridgeConfig`: how the NKN bridge connects (seed, identifier, subclients, seed RPC node).

This is the transport's parameter object, built in code (by `relay.settings.RelaySettings`,
the peer client's settings, a benchmark or a test); the operator's settings and their `.env`
keys live in the settings classes. Seed RPC addresses are normalised here once
(`rpc_server_addr`), for every caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from farm.common.net import is_loopback_url
from relay.bridge.errors import BridgeConfigError

BRIDGE_DIR = Path(__file__).resolve().parent
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
#: The seed's NKN_NUM_SUBCLIENTS: on the real network each sub-client is a separate path.
SEED_NUM_SUBCLIENTS = 2
#: Bytes of DMs the outbox holds at most by default: a stalled link must not make the bridge
#: hold `queue_limit` DMs of 3.5 MB each.
DEFAULT_QUEUE_LIMIT_B = 128 * 2**20
MAX_SUBCLIENTS = 16


def default_num_subclients(rpc_server_addrs: Sequence[str]) -> int:
    """Sub-clients to use when none are configured.

    The seed's 2 for the real network. When every seed address is on loopback (the local test
    node), 1: all sub-clients would reach the same single node, so extra ones add no path, yet
    each signs, encrypts and routes its own copy of every DM (half the DM rate with 2).
    """
    if rpc_server_addrs and all(is_loopback_url(addr) for addr in rpc_server_addrs):
        return 1
    return SEED_NUM_SUBCLIENTS


def rpc_server_addr(entry: str) -> str:
    """One seed address as the nkn-sdk `rpcServerAddr` URL; ValueError if it is none.

    The original relay passed its `NKN_BRIDGE_SEED_WS` value as `seedWsAddr`, an option
    nkn-sdk 1.3.6 does not have, so it was silently ignored. The SDK joins the network through
    one seed JSON-RPC URL (`rpcServerAddr`), which then hands out the websocket address. So
    each entry is taken as that RPC URL: `ws://` becomes `http://`, `wss://` becomes `https://`
    (same host, port and path), a bare `host:port` becomes `http://host:port`. Normalising an
    already normalised URL changes nothing.
    """
    text = entry.strip()
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(url)
        scheme = _SCHEMES.get(parts.scheme.lower())
        host = parts.hostname
    except ValueError:
        scheme = host = None
    if scheme is None or not host:
        raise BridgeConfigError(
            f"{text!r} is not a seed address "
            "(expected http(s)://host:port/path, ws(s)://host:port or host:port)"
        )
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def rpc_server_addrs(entries: Iterable[str]) -> tuple[str, ...]:
    """Seed addresses as `rpcServerAddr` URLs (see `rpc_server_addr`); each entry may itself
    be a CSV, blank entries are skipped. Several are tried in turn whenever the bridge
    (re)starts."""
    return tuple(rpc_server_addr(e) for item in entries for e in item.split(",") if e.strip())


def rpc_addrs_from_seed_ws(value: str, key: str = "NKN_BRIDGE_SEED_WS") -> tuple[str, ...]:
    """A CSV of seed addresses as `rpcServerAddr` URLs; an error names `key`."""
    try:
        return rpc_server_addrs([value])
    except BridgeConfigError as exc:
        raise BridgeConfigError(f"{key}: {exc}") from None


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
    # The Node process's environment (its PATH also finds `node_command`). An entry point
    # passes its snapshot (farm.settings.process_environ()); None inherits this process's.
    environ: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    queue_limit: int = 1000
    queue_limit_b: int = DEFAULT_QUEUE_LIMIT_B
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
            raise BridgeConfigError("seed_hex: expected 64 hex characters")
        if not 0 <= self.num_subclients <= MAX_SUBCLIENTS:
            raise BridgeConfigError(f"num_subclients: must be between 0 and {MAX_SUBCLIENTS}")
        if self.num_subclients == 0 and not self.original_client:
            raise BridgeConfigError("num_subclients: 0 needs original_client (no client left)")
        if self.identifier and not _IDENTIFIER.fullmatch(self.identifier):
            raise BridgeConfigError(f"identifier: {self.identifier!r} is not a valid identifier")
        if self.queue_limit < 1:
            raise BridgeConfigError("queue_limit: must be at least 1")
        if self.queue_limit_b < 1:
            raise BridgeConfigError("queue_limit_b: must be at least 1")
        for name in ("ready_timeout_s", "probe_interval_s", "probe_timeout_s", "close_timeout_s"):
            if getattr(self, name) <= 0:
                raise BridgeConfigError(f"{name}: must be positive")


def valid_identifier(text: str) -> bool:
    """Whether `text` may prefix an NKN address (letters, digits, `_.-`, 1 to 64 of them)."""
    return _IDENTIFIER.fullmatch(text) is not None
