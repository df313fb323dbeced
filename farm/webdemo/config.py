"""The demo site's configuration: one frozen `SiteConfig`, built once at the edge."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from farm.webdemo.errors import SiteConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SITE_DIR = ROOT / "site"
DEFAULT_CERT_DIR = DEFAULT_SITE_DIR / "certs"
DEFAULT_NKN_SDK_DIR = ROOT / "relay" / "bridge" / "node_modules" / "nkn-sdk" / "dist"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_PROXY_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "gemma3:4b"

ENV_PREFIX = "FARM_SITE_"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """Everything the site's server needs; the page gets the public part from `/config.json`.

    `cert`/`key` are the TLS files: when `own_cert` is false they are made on first run
    (self-signed for localhost/127.0.0.1) and kept. `nkn_rpc` is the seed JSON-RPC URL the
    browser's nkn-sdk uses (None: the SDK's mainnet default); `nkn_tls` says whether that node
    speaks wss or plain ws. Left None, it is false for a loopback seed (the local test node
    speaks ws) and true otherwise (a page served over https must reach real nodes by wss).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    cert: Path = DEFAULT_CERT_DIR / "site-cert.pem"
    key: Path = DEFAULT_CERT_DIR / "site-key.pem"
    own_cert: bool = False
    proxy_url: str = DEFAULT_PROXY_URL
    relay_address: str | None = None
    relay_service: str = "ollama"
    nkn_rpc: str | None = None
    nkn_tls: bool | None = None
    default_model: str = DEFAULT_MODEL
    relay_ping_timeout_s: float = 8.0
    site_dir: Path = DEFAULT_SITE_DIR
    nkn_sdk_dir: Path = DEFAULT_NKN_SDK_DIR

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SiteConfigError(f"port must be 1-65535, got {self.port}")
        _check_http_url("proxy URL", self.proxy_url)
        if self.nkn_rpc is not None:
            _check_http_url("NKN seed RPC URL", self.nkn_rpc)
        if self.relay_address is not None and not _is_nkn_address(self.relay_address):
            raise SiteConfigError(
                "relay address must be an NKN address ending in a 64-hex public key, "
                f"got {self.relay_address!r}"
            )
        if self.nkn_tls is None:
            loopback = self.nkn_rpc is not None and _is_loopback_url(self.nkn_rpc)
            object.__setattr__(self, "nkn_tls", not loopback)
        if not 0.5 <= self.relay_ping_timeout_s <= 120:
            raise SiteConfigError(
                f"relay ping timeout must be 0.5-120 s, got {self.relay_ping_timeout_s}"
            )
        if not self.default_model.strip():
            raise SiteConfigError("default model must not be empty")

    @property
    def url(self) -> str:
        """The page's address, as printed for the user."""
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> SiteConfig:
        """Build from `FARM_SITE_*` variables; keyword overrides (CLI flags) win."""
        values: dict[str, object] = {}
        text = {
            "HOST": "host",
            "PROXY_URL": "proxy_url",
            "RELAY_ADDRESS": "relay_address",
            "RELAY_SERVICE": "relay_service",
            "NKN_RPC": "nkn_rpc",
            "MODEL": "default_model",
        }
        for suffix, name in text.items():
            if value := environ.get(ENV_PREFIX + suffix, "").strip():
                values[name] = value
        if raw := environ.get(ENV_PREFIX + "PORT", "").strip():
            values["port"] = _parse_int(ENV_PREFIX + "PORT", raw)
        if raw := environ.get(ENV_PREFIX + "RELAY_PING_TIMEOUT_S", "").strip():
            values["relay_ping_timeout_s"] = _parse_float(ENV_PREFIX + "RELAY_PING_TIMEOUT_S", raw)
        if raw := environ.get(ENV_PREFIX + "NKN_TLS", "").strip():
            values["nkn_tls"] = _parse_bool(ENV_PREFIX + "NKN_TLS", raw)
        for suffix, name in (("CERT", "cert"), ("KEY", "key"), ("NKN_SDK_DIR", "nkn_sdk_dir")):
            if raw := environ.get(ENV_PREFIX + suffix, "").strip():
                values[name] = Path(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        cert, key = values.get("cert"), values.get("key")
        if (cert is None) != (key is None):
            raise SiteConfigError("--cert and --key (FARM_SITE_CERT/FARM_SITE_KEY) go together")
        if cert is not None:
            values["own_cert"] = True
        return cls(**values)  # type: ignore[arg-type]


def _check_http_url(what: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteConfigError(f"{what} must be an http(s) URL, got {url!r}")


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_nkn_address(address: str) -> bool:
    pubkey = address.rsplit(".", 1)[-1]
    return len(pubkey) == 64 and all(c in "0123456789abcdef" for c in pubkey.lower())


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SiteConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _parse_float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise SiteConfigError(f"{name} must be a number, got {raw!r}") from exc


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SiteConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")
