"""Relay policy: which peers may call, which URLs a request may reach, which headers pass.

The seed's relay was an open proxy into the LAN; this one is not. Only `RELAY_TARGETS` services
are reachable; a raw `url` must start with an entry of `RELAY_ALLOW_URLS`; a `path` is normalised
and checked so that `..` (also percent-encoded) or a full URL cannot leave the service's base;
`RELAY_ALLOWED_PEERS` limits who may call; hop-by-hop and `Host` headers are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from relay.errors import PolicyError
from relay.frames import HttpSpec
from relay.settings import RelaySettings

#: The header naming the NKN peer a request is for; the farm's proxy honours it only together
#: with a key made for the relay (`invoke keys.add NAME --relay`).
PEER_HEADER = "x-farm-peer"
#: RFC 9110 §7.6.1 hop-by-hop headers, plus those the relay or httpx must set itself.
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-relay-stream",
        # Who a request is for is the relay's to say (with its own farm key), never a peer's.
        PEER_HEADER,
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how one relay.http request is sent upstream, after the policy allowed it."""

    url: str
    headers: dict[str, str]
    verify: bool


def bad_request(reason: str) -> PolicyError:
    """The relay's `bad request: <reason>` refusal."""
    return PolicyError(f"bad request: {reason}", 400)


class Policy:
    """Decides, for one relay config, whether a peer and a request are allowed."""

    def __init__(self, config: RelaySettings) -> None:
        """Precompute the parsed targets and allowlist."""
        self._config = config
        self._targets = {name: httpx.URL(base) for name, base in config.targets.items()}
        self._allow = tuple(httpx.URL(prefix) for prefix in config.allow_urls)
        self._peers = frozenset(p.lower() for p in config.allowed_peers)

    def check_peer(self, src: str) -> None:
        """Raise `PolicyError("forbidden")` unless `src` (an NKN address) may use the relay."""
        if not self._peers:
            return
        address = src.lower()
        pubkey = address.rsplit(".", 1)[-1]
        if address not in self._peers and pubkey not in self._peers:
            raise PolicyError("forbidden", 403)

    def resolve(self, spec: HttpSpec, src: str | None = None) -> Target:
        """The upstream URL and headers for a request, or a `PolicyError` explaining the refusal."""
        if spec.service is not None:
            base = self._targets.get(spec.service)
            if base is None:
                raise PolicyError(f"unknown service {spec.service[:64]!r}", 404)
            url = join_path(base, spec.path)
        else:
            url = self._allowed_url(spec.url or "", spec.path)
        verify = self._config.verify_default if spec.verify is None else spec.verify
        headers = forward_headers(spec.headers)
        key = self._config.farm_key
        if key and spec.service is not None and src is not None:
            # Only the configured services get the relay's key: an allowlisted raw URL is
            # somebody else's server, which must never see it.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {key}"
            headers[PEER_HEADER] = peer_identity(src)
        return Target(str(url), headers, verify)

    def _allowed_url(self, raw: str, path: str) -> httpx.URL:
        if not self._allow:
            raise PolicyError("url not allowed", 403)
        url = _parse_url(raw)
        if path not in {"", "/"}:
            url = join_path(url, path)
        else:
            _check_segments(url.raw_path.decode("ascii", "replace").split("?", 1)[0])
        if not any(_within(url, prefix) for prefix in self._allow):
            raise PolicyError("url not allowed", 403)
        return url


def peer_identity(src: str) -> str:
    """A peer's NKN address without a MultiClient's `__N__.` sub-client prefix."""
    head, dot, rest = src.partition(".")
    return rest if dot and head.startswith("__") and head.endswith("__") else src


def join_path(base: httpx.URL, path: str) -> httpx.URL:
    """Append a peer's `path` (with optional query) to `base`, refusing anything that escapes."""
    if any(ord(ch) < 0x20 or ch in "\\\x7f" or 0xD800 <= ord(ch) < 0xE000 for ch in path):
        raise bad_request("path contains control characters or backslashes")
    if _SCHEME.match(path) or path.startswith("//"):
        raise bad_request("path must be a path, not a URL")
    path = path.split("#", 1)[0]
    path_part, sep, query = path.partition("?")
    segments = _check_segments(path_part)
    prefix = base.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
    joined = prefix + "/" + "/".join(segments) + (sep + query)
    # Parsing the whole string lets httpx percent-encode what a peer left raw (spaces, UTF-8).
    url = _parse_url(f"{base.scheme}://{base.netloc.decode('ascii')}{joined}")
    if not _within(url, base):
        raise bad_request("path escapes the service")
    return url


def forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The peer's headers minus hop-by-hop ones, `Host`, and those the relay sets itself."""
    items = list(headers.items())
    named: set[str] = set()
    for name, value in items:
        if name.lower() == "connection":
            named |= {part.strip().lower() for part in value.split(",")}
    out: dict[str, str] = {}
    for name, value in items:
        if not _TOKEN.match(name):
            raise bad_request(f"invalid header name {name[:40]!r}")
        if any(ch in value for ch in "\r\n\x00"):
            raise bad_request(f"invalid value for header {name[:40]!r}")
        lower = name.lower()
        if lower in DROPPED_HEADERS or lower in named:
            continue
        out[name] = value
    return out


def _check_segments(path: str) -> list[str]:
    """Path segments without empty and `.` ones; refuse `..`, also percent-encoded (any depth)."""
    kept: list[str] = []
    for segment in path.split("/"):
        decoded = segment
        for _ in range(4):  # %252e%252e decodes twice; chained servers may decode again.
            once = unquote(decoded)
            if once == decoded:
                break
            decoded = once
        if decoded in {"..", "..."} or "/" in decoded or "\\" in decoded:
            raise bad_request("path may not contain '..' or encoded separators")
        if decoded in {"", "."}:
            continue
        kept.append(segment)
    return kept


def _parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
        raise bad_request("invalid url") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise bad_request("url must be http(s) with a host")
    if url.userinfo:
        raise bad_request("url may not carry credentials")
    return url


def _within(url: httpx.URL, base: httpx.URL) -> bool:
    """Same origin as `base` and a path at or below `base`'s path (segment-wise)."""
    if (url.scheme, url.host.lower(), url.port) != (base.scheme, base.host.lower(), base.port):
        return False
    root = base.path.rstrip("/")
    return url.path == root or url.path.startswith(root + "/") or root == ""
