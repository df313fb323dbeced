"""`ProxySettings`, the proxy's settings: each declared once, with its flag, variable and help.

`python -m farm.proxy` parses its command line from this class, and a parent that starts the
proxy renders its argv from it (`to_argv(ProxySettings(...))`, the API key by `child_env`).
Timeouts and intervals are in seconds. The client-facing limits (header sizes, client
timeouts, the connection cap, `client_max_body_size` for JSON bodies) are the front door's,
inherited from `DoorSettings`. `max_body_bytes` unset means no limit on uploads: model blobs
are gigabytes, so the default is unlimited, as in Ollama itself.
"""

from __future__ import annotations

import re
from pathlib import Path
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
# Kubernetes' CoreDNS caches answers for 5 s by default; asking more often gains nothing.
DEFAULT_DNS_INTERVAL_S = 5.0
MAX_LABEL_CHARS = 200
_DNS_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_.])?")

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


def parse_dns_target(value: str) -> tuple[str, int]:
    """Split one `--backend-dns` value, `NAME:PORT`, into (name, port); ValueError if bad."""
    name, sep, port = value.strip().rpartition(":")
    if not sep or not _DNS_NAME.fullmatch(name) or not port.isdigit():
        raise ValueError(f"must look like NAME:PORT (e.g. ollama.farm.svc:11434), got {value!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be 1-65535, got {value!r}")
    return name, int(port)


def parse_backend_label(value: str) -> tuple[str, str]:
    """Split one `--backend-label` value, `URL=LABEL`, into (normalised URL, label)."""
    url, sep, label = value.partition("=")
    label = label.strip()
    if not sep or not label:
        raise ValueError(f"must look like URL=LABEL (e.g. http://h:11434=gpu0), got {value!r}")
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise ValueError(f"label must be printable, at most {MAX_LABEL_CHARS} characters")
    return normalise_backend_url(url), label


def _split_commas(value: object) -> object:
    # A flag value may itself be a comma list, as the variable is.
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return tuple(
            part.strip() for item in value for part in str(item).split(",") if part.strip()
        )
    return value


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
    backend_label: tuple[str, ...] = setting(
        (),
        help="what a --backend holds, shown in /_health, e.g. 'box-a gpu0 GPU-5f3c...' "
        "(no comma; repeat per backend)",
        env="FARM_PROXY_BACKEND_LABELS",
        metavar="URL=LABEL",
    )
    backend_dns: tuple[str, ...] = setting(
        (),
        help="a DNS name whose every address is a backend on PORT, re-resolved every "
        "--dns-interval (a Kubernetes headless Service, Swarm's tasks.NAME; repeatable)",
        env="FARM_PROXY_BACKEND_DNS",
        metavar="NAME:PORT",
    )
    dns_interval: float = setting(
        DEFAULT_DNS_INTERVAL_S,
        help="seconds between two resolutions of each --backend-dns name",
        metavar="S",
        gt=0,
    )
    dns_hosts_file: Path | None = setting(
        None,
        help="resolve --backend-dns names from this hosts-format file instead of the system "
        "resolver (read each time: replace it in one rename, as a mounted ConfigMap is)",
        metavar="PATH",
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
    keys_db: Path | None = setting(
        None,
        help="named API keys and usage (`invoke keys`): once it holds a key, every /api and "
        "/v1 call needs one",
        env="FARM_KEYS_DB",
        metavar="FILE",
    )
    fair_queue: bool = setting(
        True,
        help="with named keys, queue what does not fit in the slots here and admit fairly "
        "across keys (needs --num-parallel)",
    )
    fair_idle_reserve: float = setting(
        2.0,
        help="seconds a key whose request just ended keeps one slot free for its next turn "
        "(0: none)",
        metavar="S",
        ge=0,
    )
    access_log: bool = setting(True, help="do not log one line per request", flag="--no-access-log")
    log_level: LogLevel = setting("info", help="logging level")

    @field_validator("backend", "backend_label", "backend_dns", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("backend")
    @classmethod
    def _normalise_backends(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        urls = tuple(normalise_backend_url(url) for url in value)
        if len(set(urls)) != len(urls):
            raise ValueError("a backend is given twice")
        return urls

    @field_validator("backend_dns")
    @classmethod
    def _check_dns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        targets = [parse_dns_target(v) for v in value]
        if len(set(targets)) != len(targets):
            raise ValueError("a NAME:PORT is given twice")
        return tuple(f"{name}:{port}" for name, port in targets)

    @field_validator("backend_label")
    @classmethod
    def _check_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        pairs = [parse_backend_label(v) for v in value]
        if len({url for url, _ in pairs}) != len(pairs):
            raise ValueError("a backend is labelled twice")
        return tuple(f"{url}={label}" for url, label in pairs)

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _needs_a_backend(self) -> ProxySettings:
        if not self.backend and not self.backend_dns:
            raise ValueError(
                "at least one --backend (FARM_PROXY_BACKENDS) or --backend-dns is required"
            )
        unknown = [url for url in self.labels if url not in self.backend]
        if unknown:
            raise ValueError(f"--backend-label names {unknown[0]}, which is not a --backend")
        return self

    @property
    def labels(self) -> dict[str, str]:
        """Each labelled backend URL and its label."""
        return dict(parse_backend_label(v) for v in self.backend_label)

    @property
    def dns_targets(self) -> tuple[tuple[str, int], ...]:
        """The `--backend-dns` names and ports."""
        return tuple(parse_dns_target(v) for v in self.backend_dns)

    @property
    def binds_loopback(self) -> bool:
        """Whether the listening address is reachable from this machine only."""
        return is_loopback_host(self.host)
