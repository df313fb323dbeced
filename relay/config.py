"""RelayConfig: the relay's typed settings, read from `.env` and the environment at the edge.

The `.env` file is created on first run as the seed describes: a fresh `NKN_SEED_HEX`, file
mode 0600, the seed's keys with `ollama` pointing at the farm proxy. Invalid values raise
`ConfigError` naming the key. This is the only relay module that reads `os.environ`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from dotenv import dotenv_values

from relay.errors import ConfigError

#: nkn-sdk refuses messages over 4,000,000 bytes (envelope included, nkn-protocol.md §6).
NKN_MAX_MESSAGE_B = 4_000_000
#: What a frame may use of that: the envelope adds the destination list, signature, nonce, MAC.
MAX_DM_B_LIMIT = 3_900_000
DEFAULT_TARGETS = {"ollama": "http://127.0.0.1:8080"}

ENV_TEMPLATE = """\
# ollama-farm NKN relay settings (created on first run; keep this file private: mode 0600).
NKN_SEED_HEX={seed}
NKN_NUM_SUBCLIENTS=2
RELAY_WORKERS=4
RELAY_MAX_BODY_B=2097152
RELAY_VERIFY_DEFAULT=1
RELAY_TARGETS={targets}
# Optional CSV of NKN seed node addresses. The original passed them as seedWsAddr, which
# nkn-sdk ignores; they now reach the SDK as rpcServerAddr (see README, NKN relay).
NKN_BRIDGE_SEED_WS=
# Raw "url" requests are refused unless they start with one of these (CSV of URL prefixes).
RELAY_ALLOW_URLS=
# NKN addresses or public keys allowed to use the relay (CSV); empty means anyone.
RELAY_ALLOWED_PEERS=
"""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything the relay engine needs; build it with `from_env`."""

    seed_hex: str = ""
    num_subclients: int = 2
    workers: int = 4
    max_body_b: int = 2_097_152
    verify_default: bool = True
    targets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    bridge_seed_ws: tuple[str, ...] = ()
    rpc_server_addr: str | None = None
    identifier: str = ""
    allow_urls: tuple[str, ...] = ()
    allowed_peers: tuple[str, ...] = ()
    batch_lines: int = 24
    batch_ms: int = 80
    keepalive_s: float = 10.0
    queue: int = 16
    peer_limit: int = 0  # 0: half of what the relay admits (running + queued), at least workers
    max_line_b: int = 1_048_576
    max_dm_b: int = 3_500_000

    @property
    def per_peer_limit(self) -> int:
        """Requests one peer may have running or queued at once.

        By default one peer may hold half of the relay's admission room, so a flooding peer
        always leaves the other half to everyone else, while one page running 9 streams
        through a default relay (4 workers + 16 queued) is served rather than refused.
        """
        return self.peer_limit or max(self.workers, (self.workers + self.queue) // 2)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RelayConfig:
        """Build and validate a config from a mapping of the `.env` keys."""
        env = {k: v.strip() for k, v in environ.items() if v is not None}
        config = cls(
            seed_hex=_seed(env.get("NKN_SEED_HEX", "")),
            num_subclients=_int(env, "NKN_NUM_SUBCLIENTS", 2, 1, 16),
            workers=_int(env, "RELAY_WORKERS", 4, 1, 1024),
            max_body_b=_int(env, "RELAY_MAX_BODY_B", 2_097_152, 1, 2**40),
            verify_default=_bool(env, "RELAY_VERIFY_DEFAULT", True),
            targets=_targets(env.get("RELAY_TARGETS", "")),
            bridge_seed_ws=_csv(env, "NKN_BRIDGE_SEED_WS"),
            rpc_server_addr=env.get("NKN_RPC_SERVER_ADDR") or None,
            identifier=env.get("NKN_IDENTIFIER", ""),
            allow_urls=tuple(_url(u, "RELAY_ALLOW_URLS") for u in _csv(env, "RELAY_ALLOW_URLS")),
            allowed_peers=tuple(p.lower() for p in _csv(env, "RELAY_ALLOWED_PEERS")),
            batch_lines=_int(env, "RELAY_BATCH_LINES", 24, 1, 10_000),
            batch_ms=_int(env, "RELAY_BATCH_MS", 80, 0, 60_000),
            keepalive_s=_float(env, "RELAY_KEEPALIVE_S", 10.0, 0.05, 3600.0),
            queue=_int(env, "RELAY_QUEUE", 16, 0, 100_000),
            peer_limit=_int(env, "RELAY_PEER_LIMIT", 0, 0, 100_000),
            max_line_b=_int(env, "RELAY_MAX_LINE_B", 1_048_576, 64, MAX_DM_B_LIMIT),
            max_dm_b=_int(env, "RELAY_MAX_DM_B", 3_500_000, 4096, MAX_DM_B_LIMIT),
        )
        # base64 grows bodies by 4/3; the whole relay.response must still fit in one DM.
        if config.max_body_b * 4 // 3 + 65_536 > config.max_dm_b:
            limit = (config.max_dm_b - 65_536) * 3 // 4
            raise ConfigError("RELAY_MAX_BODY_B", f"at most {limit} with RELAY_MAX_DM_B")
        return config


def new_seed_hex() -> str:
    """A fresh random NKN seed (32 bytes, hex)."""
    return secrets.token_hex(32)


def ensure_env_file(path: Path) -> bool:
    """Create `.env` with a fresh seed and the seed's defaults (mode 0600); True if created."""
    text = ENV_TEMPLATE.format(seed=new_seed_hex(), targets=json.dumps(DEFAULT_TARGETS))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # the umask may have narrowed it further, never widened; be exact.
    return True


def load_environ(env_file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Create `env_file` if missing, then read it; the process environment wins over the file.

    The merged mapping feeds both `RelayConfig.from_env` and the bridge's `BridgeConfig`.
    """
    ensure_env_file(env_file)
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values.update(os.environ if environ is None else environ)
    return values


def load(env_file: Path, environ: Mapping[str, str] | None = None) -> RelayConfig:
    """`RelayConfig` from `env_file` (created on first run) and the environment."""
    return RelayConfig.from_env(load_environ(env_file, environ))


def _seed(value: str) -> str:
    if value == "":
        return ""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError("NKN_SEED_HEX", "expected 64 hex digits")
    return value.lower()


def _int(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = env.get(key, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(key, f"expected an integer, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    text = env.get(key, "")
    if text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(key, f"expected a number, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    text = env.get(key, "").lower()
    if text == "":
        return default
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(key, f"expected 1/0 (or true/false), got {text[:40]!r}")


def _csv(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    text = env.get(key, "")
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            raise ConfigError(key, "not a valid JSON list") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(key, "expected a JSON list of strings")
        return tuple(i.strip() for i in items if i.strip())
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _url(value: str, key: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError(key, f"invalid URL {value[:80]!r}") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigError(key, f"expected an http(s) URL with a host, got {value[:80]!r}")
    return value


def _targets(text: str) -> dict[str, str]:
    key = "RELAY_TARGETS"
    if text == "":
        return dict(DEFAULT_TARGETS)
    try:
        obj = json.loads(text)
    except ValueError:
        raise ConfigError(key, 'not valid JSON (expected {"name": "http://host:port"})') from None
    if not isinstance(obj, dict) or not obj:
        raise ConfigError(key, "expected a non-empty JSON object of service -> base URL")
    for name, base in obj.items():
        if not isinstance(base, str):
            raise ConfigError(key, f"service {name!r}: base URL must be a string")
        _url(base, key)
    return dict(obj)
