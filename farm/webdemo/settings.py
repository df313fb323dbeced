"""`SiteSettings`, the demo site's settings: each declared once, with its flag, variable and help.

`python -m farm.webdemo` parses its command line from this class, and a parent that starts the
site renders the child's argv from it (`to_argv(SiteSettings(...))`). Durations are in seconds.
Left unset, `--cert/--key` mean a self-signed certificate made on first run (see
`farm.webdemo.assets` for where), and `--nkn-tls` follows `--nkn-rpc`: plain ws for a loopback
seed (the local test node speaks ws), wss otherwise (a page served over https must reach real
nodes by wss).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from farm.common.frontdoor import DoorSettings
from farm.common.net import is_loopback_url
from farm.settings import setting

DEFAULT_PORT = 8443
DEFAULT_PROXY_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "gemma3:4b"
# nkn-sdk's seed calls are a few hundred bytes; 64 KiB is generous and still cheap to hold.
DEFAULT_NKN_RPC_MAX_BODY = 64 * 1024
# A page's MultiClient makes one call per sub-client when it connects (three today) and a few
# more when it reconnects: nginx's usual `limit_req rate=10r/s burst=20` leaves room for that.
DEFAULT_NKN_RPC_RATE = 10.0
DEFAULT_NKN_RPC_BURST = 20


def check_http_url(url: str) -> str:
    """Return `url` when it is an http(s) URL with a host; raise ValueError otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError("must be an http(s) URL with a valid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL, e.g. http://127.0.0.1:8080")
    return url


def is_nkn_address(address: str) -> bool:
    """True for `[identifier.]<64 hex digits>`: an NKN address ends in its ed25519 public key."""
    pubkey = address.rsplit(".", 1)[-1]
    return len(pubkey) == 64 and all(c in "0123456789abcdef" for c in pubkey.lower())


class SiteSettings(DoorSettings):
    """Everything the site's server needs; the page gets the public part from `/config.json`.

    The client-facing limits are the front door's (`DoorSettings`). The only route that takes
    a body is `/nkn-rpc`, capped at the smaller of `--nkn-rpc-max-body` and
    `--client-max-body-size` (see `rpc_body_limit`).
    """

    prog = "python -m farm.webdemo"
    summary = "Serve the demo page over HTTPS (default https://127.0.0.1:8443/)."

    host: str = setting("127.0.0.1", help="address to bind", env="FARM_SITE_HOST")
    port: int = setting(DEFAULT_PORT, help="port to bind", env="FARM_SITE_PORT", ge=1, le=65535)
    cert: Path | None = setting(
        None,
        help="your TLS certificate (PEM), with --key; unset: a self-signed one, made once",
        env="FARM_SITE_CERT",
        metavar="PEM",
    )
    key: Path | None = setting(
        None, help="your TLS private key (PEM), with --cert", env="FARM_SITE_KEY", metavar="PEM"
    )
    proxy_url: str = setting(
        DEFAULT_PROXY_URL,
        help="the farm proxy the page streams from",
        env="FARM_SITE_PROXY_URL",
        metavar="URL",
    )
    relay_address: str | None = setting(
        None,
        help="the relay's NKN address, for the page's NKN path",
        env="FARM_SITE_RELAY_ADDRESS",
        metavar="ADDRESS",
    )
    relay_service: str = setting(
        "ollama", help="the relay's target the page asks for", env="FARM_SITE_RELAY_SERVICE"
    )
    nkn_rpc: str | None = setting(
        None,
        help="NKN seed RPC URL, e.g. a local test node; unset: the NKN mainnet",
        env="FARM_SITE_NKN_RPC",
        metavar="URL",
    )
    nkn_tls: bool | None = setting(
        None,
        help="the browser reaches NKN nodes by wss; unset: ws for a loopback --nkn-rpc",
        env="FARM_SITE_NKN_TLS",
    )
    nkn_rpc_max_body: int = setting(
        DEFAULT_NKN_RPC_MAX_BODY,
        help="largest seed RPC call /nkn-rpc reads, bytes (larger: 413, the rest unread)",
        env="FARM_SITE_NKN_RPC_MAX_BODY",
        metavar="BYTES",
        ge=256,
    )
    nkn_rpc_rate: float = setting(
        DEFAULT_NKN_RPC_RATE,
        help="seed RPC calls per second each client address may make through /nkn-rpc",
        env="FARM_SITE_NKN_RPC_RATE",
        metavar="PER_S",
        gt=0,
    )
    nkn_rpc_burst: int = setting(
        DEFAULT_NKN_RPC_BURST,
        help="seed RPC calls a client address may make at once before --nkn-rpc-rate applies",
        env="FARM_SITE_NKN_RPC_BURST",
        metavar="CALLS",
        ge=1,
    )
    model: str = setting(DEFAULT_MODEL, help="model preselected on the page", env="FARM_SITE_MODEL")
    relay_ping_timeout: float = setting(
        8.0,
        help="seconds the page waits for the relay's relay.pong before calling it unreachable",
        env="FARM_SITE_RELAY_PING_TIMEOUT_S",
        metavar="S",
        ge=0.5,
        le=120,
    )
    relay_silence: float = setting(
        15.0,
        help="seconds without a word from the relay after which the page calls a stream lost; "
        "keep it above the relay's keepalive interval (RELAY_KEEPALIVE_S, 10 s)",
        env="FARM_SITE_RELAY_SILENCE_S",
        metavar="S",
        ge=0.5,
        le=3600,
    )
    nkn_sdk_dir: Path | None = setting(
        None,
        help="folder holding nkn-sdk's browser build nkn.min.js; unset: the relay's",
        env="FARM_SITE_NKN_SDK_DIR",
        metavar="DIR",
    )

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("nkn_rpc")
    @classmethod
    def _nkn_rpc(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("relay_address")
    @classmethod
    def _relay_address(cls, value: str | None) -> str | None:
        if value is not None and not is_nkn_address(value):
            raise ValueError("must be an NKN address ending in a 64-hex public key")
        return value

    @field_validator("host", "model", "relay_service")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _cert_pair(self) -> SiteSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("--cert and --key (FARM_SITE_CERT, FARM_SITE_KEY) go together")
        return self

    @property
    def own_cert(self) -> bool:
        """Whether the user brought a certificate (else a self-signed one is made and kept)."""
        return self.cert is not None

    @property
    def browser_nkn_tls(self) -> bool:
        """Whether the browser's nkn-sdk speaks wss: `nkn_tls`, or else by the seed's host."""
        if self.nkn_tls is not None:
            return self.nkn_tls
        return not (self.nkn_rpc is not None and is_loopback_url(self.nkn_rpc))

    @property
    def rpc_body_limit(self) -> int:
        """Bytes of a seed RPC call `/nkn-rpc` reads at most (`client_max_body_size` 0: none)."""
        if self.client_max_body_size == 0:
            return self.nkn_rpc_max_body
        return min(self.nkn_rpc_max_body, self.client_max_body_size)

    @property
    def url(self) -> str:
        """The page's address, as printed for the user."""
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}/"
