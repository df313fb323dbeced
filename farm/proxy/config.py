"""`ProxyConfig`, the proxy's one typed configuration, built from the environment or CLI flags."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from farm.proxy.errors import ConfigError

DEFAULT_PORT = 8080
# Ollama's own load timeout is 5 min (OLLAMA_LOAD_TIMEOUT) and a request may queue for a slot
# before that, so the default header wait is longer than any cold load (spec §6.5, §10 #10).
DEFAULT_HEADER_TIMEOUT_S = 900.0
DEFAULT_IDLE_TIMEOUT_S = 300.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_HEALTH_INTERVAL_S = 2.0


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_backend_url(url: str) -> str:
    """Check one backend URL (`http(s)://host[:port]`) and return it without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"backend URL must look like http://host:port, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"backend URL must not carry a path or query, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(f"backend URL has an invalid port: {url!r}") from exc
    return f"{parts.scheme}://{parts.netloc}"


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything the proxy needs; validated on construction, never changed afterwards.

    Timeouts are in seconds; `None` for `max_body_bytes` means no limit (model blobs are
    gigabytes, so the default is unlimited, as in Ollama itself).
    """

    backends: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model: str | None = None
    num_parallel: int | None = None
    pin_num_ctx: int | None = None
    pin_num_gpu: int | None = None
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_body_bytes: int | None = None
    health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S
    access_log: bool = True
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not self.backends:
            raise ConfigError("at least one --backend (FARM_PROXY_BACKENDS) is required")
        object.__setattr__(
            self, "backends", tuple(normalise_backend_url(url) for url in self.backends)
        )
        if len(set(self.backends)) != len(self.backends):
            raise ConfigError(f"--backend given twice: {list(self.backends)}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {self.port}")
        for name in ("num_parallel", "pin_num_ctx", "max_body_bytes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {value}")
        if self.pin_num_gpu is not None and self.pin_num_gpu < 0:
            raise ConfigError(f"--pin-num-gpu must be >= 0, got {self.pin_num_gpu}")
        _positive("--header-timeout", self.header_timeout_s)
        _positive("--idle-timeout", self.idle_timeout_s)
        _positive("--connect-timeout", self.connect_timeout_s)
        _positive("--health-interval", self.health_interval_s)
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("--api-key / FARM_API_KEY must not be blank")

    @property
    def binds_loopback(self) -> bool:
        """Whether the listening address is reachable from this machine only."""
        return is_loopback_host(self.host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> ProxyConfig:
        """Build a config from `FARM_*` variables; `overrides` (e.g. CLI flags) win.

        Reads FARM_PROXY_BACKENDS (comma list), FARM_PROXY_HOST, FARM_PROXY_PORT and
        FARM_API_KEY. An empty FARM_API_KEY means "no key".
        """
        values: dict[str, object] = {}
        if backends := environ.get("FARM_PROXY_BACKENDS", "").strip():
            values["backends"] = tuple(b for b in backends.split(",") if b.strip())
        if host := environ.get("FARM_PROXY_HOST", "").strip():
            values["host"] = host
        if port := environ.get("FARM_PROXY_PORT", "").strip():
            try:
                values["port"] = int(port)
            except ValueError as exc:
                raise ConfigError(f"FARM_PROXY_PORT must be an integer, got {port!r}") from exc
        if key := environ.get("FARM_API_KEY", "").strip():
            values["api_key"] = key
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("backends", ())
        return cls(**values)  # type: ignore[arg-type]
