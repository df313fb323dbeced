"""`ProxySettings`, the proxy's settings: each declared once, with its flag, variable and help.

`python -m farm.proxy` parses its command line from this class, and a parent that starts the
proxy renders its argv from it (`to_argv(ProxySettings(...))`, the API key by `child_env`).
Timeouts and intervals are in seconds. The client-facing limits (header sizes, client
timeouts, the connection cap, `client_max_body_size` for JSON bodies) are the front door's,
inherited from `DoorSettings`. `max_body_bytes` unset means no limit on uploads: model blobs
are gigabytes, so the default is unlimited, as in Ollama itself.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from farm.common.frontdoor import DoorSettings
from farm.common.net import is_loopback_host
from farm.settings import setting

DEFAULT_PORT = 8080
# Ollama's own load timeout is 5 min (OLLAMA_LOAD_TIMEOUT) and a request may queue for a slot
# before that, so the default header wait is longer than any cold load.
DEFAULT_HEADER_TIMEOUT_S = 900.0
DEFAULT_IDLE_TIMEOUT_S = 300.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_HEALTH_INTERVAL_S = 2.0

LogLevel = Literal["debug", "info", "warning", "error"]


def normalise_backend_url(url: str) -> str:
    """Check one backend URL (`http(s)://host[:port]`) and return it without a trailing slash.

    Raises ValueError saying what is wrong (the settings layer names the flag or variable).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"backend URL must look like http://host:port, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"backend URL must not carry a path or query, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"backend URL has an invalid port: {url!r}") from None
    return f"{parts.scheme}://{parts.netloc}"


class ProxySettings(DoorSettings):
    """Everything the proxy needs; validated on construction, never changed afterwards."""

    prog = "python -m farm.proxy"
    summary = "Run the stream-preserving proxy in front of one or more Ollama backends."

    # Singular, as its flag: repeated once per backend (`--backend A --backend B`).
    backend: tuple[str, ...] = setting(
        (),
        help="Ollama backend URL, http(s)://host:port (repeat for replicas)",
        env="FARM_PROXY_BACKENDS",
        metavar="URL",
    )
    host: str = setting("127.0.0.1", help="address to bind", env="FARM_PROXY_HOST")
    port: int = setting(
        DEFAULT_PORT, help="port to bind (0: any free port)", env="FARM_PROXY_PORT", ge=0, le=65535
    )
    model: str | None = setting(
        None, help="the farm's model (reported by /_health, gates readiness)"
    )
    num_parallel: int | None = setting(
        None, help="the backend's slots (reported by /_health)", gt=0
    )
    pin_num_ctx: int | None = setting(None, help="num_ctx for requests that omit it", gt=0)
    pin_num_gpu: int | None = setting(None, help="num_gpu for requests that omit it", ge=0)
    api_key: str | None = setting(
        None,
        help="require Authorization: Bearer KEY (prefer the variable: argv shows in ps)",
        env="FARM_API_KEY",
        secret=True,
        metavar="KEY",
        repr=False,
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        help="browser origin allowed to call the proxy ('*' for any; repeat for more)",
        metavar="ORIGIN",
    )
    header_timeout: float = setting(
        DEFAULT_HEADER_TIMEOUT_S,
        help="seconds to wait for a backend's first byte",
        metavar="S",
        gt=0,
    )
    idle_timeout: float = setting(
        DEFAULT_IDLE_TIMEOUT_S,
        help="seconds allowed between two bytes of a response",
        metavar="S",
        gt=0,
    )
    connect_timeout: float = setting(
        DEFAULT_CONNECT_TIMEOUT_S,
        help="seconds to open a backend connection",
        metavar="S",
        gt=0,
    )
    max_body_bytes: int | None = setting(
        None,
        help="reject any larger request body, blob uploads included (413; unset: no limit)",
        metavar="N",
        gt=0,
    )
    health_interval: float = setting(
        DEFAULT_HEALTH_INTERVAL_S,
        help="seconds between backend health probes",
        metavar="S",
        gt=0,
    )
    access_log: bool = setting(True, help="do not log one line per request", flag="--no-access-log")
    log_level: LogLevel = setting("info", help="logging level")

    @field_validator("backend", mode="before")
    @classmethod
    def _split_backends(cls, value: object) -> object:
        # A flag value may itself be a comma list, as the variable is.
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(
                part.strip() for item in value for part in str(item).split(",") if part.strip()
            )
        return value

    @field_validator("backend")
    @classmethod
    def _normalise_backends(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        urls = tuple(normalise_backend_url(url) for url in value)
        if len(set(urls)) != len(urls):
            raise ValueError("a backend is given twice")
        return urls

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _needs_a_backend(self) -> ProxySettings:
        if not self.backend:
            raise ValueError("at least one --backend (FARM_PROXY_BACKENDS) is required")
        return self

    @property
    def binds_loopback(self) -> bool:
        """Whether the listening address is reachable from this machine only."""
        return is_loopback_host(self.host)
