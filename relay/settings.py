"""`RelaySettings`: every setting of `python -m relay`, each declared once with its `.env` key.

The seed's `.env` keys keep their names and meaning (`NKN_SEED_HEX`, `NKN_NUM_SUBCLIENTS`,
`RELAY_WORKERS`, `RELAY_MAX_BODY_B`, `RELAY_VERIFY_DEFAULT`, `RELAY_TARGETS`,
`NKN_BRIDGE_SEED_WS`); the keys this project adds are all optional. Precedence is flag >
environment > `.env` (`--env-file`) > default. The same object configures the relay engine
(`RelayServer`, `Policy`, `Session`) and, through `bridge_config`, the NKN transport.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from pydantic import field_validator, model_validator

from farm.settings import ServiceSettings, setting
from relay.bridge.config import (
    MAX_SUBCLIENTS,
    BridgeConfig,
    default_num_subclients,
    rpc_server_addrs,
    valid_identifier,
)
from relay.bridge.errors import BridgeConfigError
from relay.targets import DEFAULT_TARGETS, TargetMap, Targets, http_url

#: nkn-sdk refuses messages over 4,000,000 bytes, envelope included.
NKN_MAX_MESSAGE_B = 4_000_000
#: What a frame may use of that: the envelope adds the destination list, signature, nonce, MAC.
MAX_DM_B_LIMIT = 3_900_000
#: base64 grows a body by 4/3; this much more is left for the rest of a `relay.response`.
RESPONSE_OVERHEAD_B = 65_536
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def csv_or_json_list(text: str) -> list[str]:
    """A list variable's text: a CSV, or (as the original relay also took) a JSON list."""
    if not text.startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        items = json.loads(text)
    except ValueError:
        raise ValueError("not a valid JSON list") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a JSON list of strings")
    return [i.strip() for i in items if i.strip()]


class RelaySettings(ServiceSettings):
    """The NKN relay: its identity on NKN, what it forwards to, and how it batches and admits."""

    prog = "python -m relay"
    summary = (
        "Run the NKN relay in front of the farm proxy: answer NKN direct messages with HTTP "
        "calls, print `NKN ready: <address>`. Creates the --env-file with a fresh NKN seed "
        "on first run."
    )
    env_file_setting = "env_file"

    env_file: Path = setting(
        Path(".env"), help="settings file, created with a fresh NKN seed on first run"
    )
    debug: bool = setting(False, help="live terminal view of incoming and outgoing DMs")
    log_level: str = setting("INFO", help="logging level", metavar="LEVEL")
    # -- the NKN identity and how it joins ----------------------------------------------------
    seed_hex: str = setting(
        "",
        help="the relay's NKN identity: 64 hex digits, generated once into the --env-file",
        env="NKN_SEED_HEX",
        secret=True,
        cli=False,
    )
    num_subclients: int | None = setting(
        None,
        help="NKN MultiClient sub-clients (unset: 2, or 1 when every seed address is loopback)",
        env="NKN_NUM_SUBCLIENTS",
        ge=1,
        le=MAX_SUBCLIENTS,
    )
    identifier: str = setting("", help="NKN address prefix (`name.pubkey`)", env="NKN_IDENTIFIER")
    nkn_rpc: tuple[str, ...] = setting(
        (),
        help="NKN seed RPC URL, tried before NKN_BRIDGE_SEED_WS (repeatable, or a CSV)",
        env="NKN_RPC_SERVER_ADDR",
        from_env=csv_or_json_list,
        metavar="URL",
    )
    bridge_seed_ws: tuple[str, ...] = setting(
        (),
        help="the seed's CSV of NKN seed addresses, used as seed RPC URLs (see --nkn-rpc)",
        env="NKN_BRIDGE_SEED_WS",
        from_env=csv_or_json_list,
        cli=False,
    )
    # -- what it forwards to -------------------------------------------------------------------
    farm_key: str | None = setting(
        None,
        help="the relay's own farm key (invoke keys.add relay --relay): sent on every request "
        "to a service with the peer's address, so the farm's fair queue and quotas see each peer",
        env="RELAY_FARM_KEY",
        secret=True,
        cli=False,
        repr=False,
    )
    targets: TargetMap = setting(
        Targets(DEFAULT_TARGETS),
        help='JSON object of service -> base URL, e.g. {"ollama":"http://127.0.0.1:8080"}',
        env="RELAY_TARGETS",
        metavar="JSON",
    )
    verify_default: bool = setting(
        True, help="verify upstream TLS unless a request says otherwise", env="RELAY_VERIFY_DEFAULT"
    )
    allow_urls: tuple[str, ...] = setting(
        (),
        help="URL prefixes a raw `url` request may reach (repeatable, or a CSV); none: refuse",
        env="RELAY_ALLOW_URLS",
        from_env=csv_or_json_list,
        metavar="URL",
    )
    allowed_peers: tuple[str, ...] = setting(
        (),
        help="NKN addresses or public keys allowed to call (repeatable, or a CSV); none: anyone",
        env="RELAY_ALLOWED_PEERS",
        from_env=csv_or_json_list,
        metavar="PEER",
    )
    # -- admission, batching, limits -----------------------------------------------------------
    workers: int = setting(4, help="requests run at once", env="RELAY_WORKERS", ge=1, le=1024)
    queue: int = setting(
        16, help="requests waiting for a worker", env="RELAY_QUEUE", ge=0, le=100_000
    )
    peer_limit: int = setting(
        0,
        help="requests one peer may have running or queued (0: half the room, >= workers)",
        env="RELAY_PEER_LIMIT",
        ge=0,
        le=100_000,
    )
    max_body_b: int = setting(
        2_097_152, help="cap for non-stream response bodies, bytes", env="RELAY_MAX_BODY_B",
        ge=1, le=2**40,
    )  # fmt: skip
    batch_lines: int = setting(
        24, help="stream lines per DM at most", env="RELAY_BATCH_LINES", ge=1, le=10_000
    )
    batch_ms: int = setting(
        80, help="longest wait before a partial batch is sent, ms", env="RELAY_BATCH_MS",
        ge=0, le=60_000,
    )  # fmt: skip
    keepalive_s: float = setting(
        10.0, help="keepalive frame after this many silent seconds", env="RELAY_KEEPALIVE_S",
        ge=0.05, le=3600.0,
    )  # fmt: skip
    max_line_b: int = setting(
        1_048_576, help="a longer stream line is cut (and marked truncated), bytes",
        env="RELAY_MAX_LINE_B", ge=64, le=MAX_DM_B_LIMIT,
    )  # fmt: skip
    max_dm_b: int = setting(
        3_500_000, help="no DM the relay sends is bigger, bytes", env="RELAY_MAX_DM_B",
        ge=4096, le=MAX_DM_B_LIMIT,
    )  # fmt: skip
    # -- the negotiated fast path (`mux/1`): shared, numbered, repaired messages per peer ----
    fast_path: bool = setting(
        True,
        help="offer the fast path (one message for all of a peer's streams, loss repaired)",
        env="RELAY_FAST_PATH",
    )
    mux_window_ms: int = setting(
        80, help="fast path: a peer's pending lines wait at most this long, ms",
        env="RELAY_MUX_WINDOW_MS", ge=0, le=60_000,
    )  # fmt: skip
    mux_window_b: int = setting(
        1_048_576,
        help="fast path: a peer's unacknowledged bytes, at most (past this its upstreams wait)",
        env="RELAY_MUX_WINDOW_B", ge=65_536, le=2**32,
    )  # fmt: skip
    mux_rto_ms: int = setting(
        1000, help="fast path: resend the oldest unacknowledged message after this long, ms",
        env="RELAY_MUX_RTO_MS", ge=50, le=60_000,
    )  # fmt: skip
    # -- a peer that does not keep up, or is gone ----------------------------------------------
    peer_unsent_b: int = setting(
        4_194_304,
        help="a peer's DMs not sent yet, at most: past this its upstream is not read, bytes",
        env="RELAY_PEER_UNSENT_B", ge=4096, le=2**40,
    )  # fmt: skip
    unsent_b: int = setting(
        67_108_864,
        help="DMs not sent yet to all peers together, at most (as --peer-unsent-b), bytes",
        env="RELAY_UNSENT_B", ge=4096, le=2**40,
    )  # fmt: skip
    ack_timeout_s: float = setting(
        10.0,
        help="a peer that answers none of three delivery-ACK asks over this long is gone: "
        "its requests are aborted, s",
        env="RELAY_ACK_TIMEOUT_S", ge=0.05, le=3600.0,
    )  # fmt: skip

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if isinstance(value, str):
            if value.upper() not in _LOG_LEVELS:
                raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
            return value.upper()
        return value

    @field_validator("seed_hex")
    @classmethod
    def _seed(cls, value: str) -> str:
        if value and not (len(value) == 64 and _is_hex(value)):
            raise ValueError("expected 64 hex digits")
        return value.lower()

    @field_validator("identifier")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value and not valid_identifier(value):
            raise ValueError("letters, digits and _.- only, at most 64")
        return value

    @field_validator("nkn_rpc", "bridge_seed_ws")
    @classmethod
    def _seed_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return rpc_server_addrs(value)

    @field_validator("allow_urls")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(http_url(u.strip()) for item in value for u in item.split(",") if u.strip())

    @field_validator("allowed_peers")
    @classmethod
    def _peers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p.strip().lower() for item in value for p in item.split(",") if p.strip())

    @model_validator(mode="after")
    def _body_fits_one_dm(self) -> RelaySettings:
        # base64 grows bodies by 4/3; the whole relay.response must still fit in one DM.
        if self.max_body_b * 4 // 3 + RESPONSE_OVERHEAD_B > self.max_dm_b:
            limit = (self.max_dm_b - RESPONSE_OVERHEAD_B) * 3 // 4
            raise ValueError(
                f"RELAY_MAX_BODY_B (--max-body-b) {self.max_body_b}: at most {limit} "
                f"with RELAY_MAX_DM_B (--max-dm-b) {self.max_dm_b}"
            )
        return self

    @model_validator(mode="after")
    def _backlog_caps(self) -> RelaySettings:
        # One peer must have room for the biggest DM, and all peers for one peer's share.
        if self.peer_unsent_b < self.max_dm_b:
            raise ValueError(
                f"RELAY_PEER_UNSENT_B (--peer-unsent-b) {self.peer_unsent_b}: at least "
                f"RELAY_MAX_DM_B (--max-dm-b) {self.max_dm_b}, so one DM fits"
            )
        if self.unsent_b < self.peer_unsent_b:
            raise ValueError(
                f"RELAY_UNSENT_B (--unsent-b) {self.unsent_b}: at least "
                f"RELAY_PEER_UNSENT_B (--peer-unsent-b) {self.peer_unsent_b}"
            )
        return self

    @property
    def per_peer_limit(self) -> int:
        """Requests one peer may have running or queued at once.

        By default one peer may hold half of the relay's admission room, so a flooding peer
        always leaves the other half to everyone else, while one page running 9 streams
        through a default relay (4 workers + 16 queued) is served rather than refused.
        """
        return self.peer_limit or max(self.workers, (self.workers + self.queue) // 2)

    @property
    def rpc_server_addrs(self) -> tuple[str, ...]:
        """Seed RPC URLs in the order the bridge tries them: --nkn-rpc, then NKN_BRIDGE_SEED_WS."""
        return self.nkn_rpc + self.bridge_seed_ws

    @property
    def log_level_number(self) -> int:
        """`log_level` as a `logging` level number."""
        return int(logging.getLevelName(self.log_level))

    def bridge_config(self, environ: Mapping[str, str] | None = None) -> BridgeConfig:
        """The NKN transport's config for this relay; `environ` is the Node process's.

        Raises `BridgeConfigError` when there is no seed (`NKN_SEED_HEX`).
        """
        if not self.seed_hex:
            raise BridgeConfigError("NKN_SEED_HEX: missing (64 hex characters, your NKN identity)")
        rpc = self.rpc_server_addrs
        return BridgeConfig(
            seed_hex=self.seed_hex,
            identifier=self.identifier or None,
            num_subclients=self.num_subclients or default_num_subclients(rpc),
            # The bare address too: a plain nkn.Client peer sends to it, and hears only from it.
            original_client=True,
            rpc_server_addrs=rpc,
            environ=environ,
            # The relay keeps its paced frames under --unsent-b; the rest (ends, replies) is
            # small, so the bridge's own bound only guards against a bug or a flood.
            queue_limit_b=2 * self.unsent_b,
        )


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
