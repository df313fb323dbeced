"""Backend discovery by DNS: every address a `--backend-dns NAME:PORT` name resolves to is a
backend, `http://ADDRESS:PORT`, and the answer is asked again every `--dns-interval`.

This is how orchestrators publish replicas: a Kubernetes headless Service, Docker Swarm's
`tasks.<service>` and Consul all answer one address per ready instance. An address that
appears joins the pool (probed at once, so model-aware balancing knows what it holds); one
that disappears is drained (`BackendPool.sync`).

Failures: a resolver that says the name does not exist (or has no address) is an answer,
"no backends", because that is what a headless Service with no ready pod says. A resolver that
fails (timeout, server failure, unreadable hosts file) is not: the last answer stands, so a
DNS hiccup never drains a healthy farm.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from farm.proxy.errors import ResolveError
from farm.proxy.pool import Backend, BackendPool

logger = logging.getLogger(__name__)

# getaddrinfo's "no such name" and "no address for this name" (the second is Linux-only).
_NO_ANSWER = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


class Resolver(Protocol):
    """Resolves a name to its addresses; [] when it has none; `ResolveError` on failure."""

    async def __call__(self, name: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """One `--backend-dns` entry."""

    name: str
    port: int

    @property
    def source(self) -> str:
        """The pool source its backends carry (shown in `/_health`)."""
        return f"dns {self.name}:{self.port}"

    def url(self, address: str) -> str:
        """The backend URL for one resolved address."""
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self.port}"


async def system_resolve(name: str) -> list[str]:
    """The system resolver (`getaddrinfo` in a worker thread): addresses in answer order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in _NO_ANSWER:
            return []
        raise ResolveError(f"cannot resolve {name}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise ResolveError(f"cannot resolve {name}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_hosts(text: str, name: str) -> list[str]:
    """The addresses `name` has in hosts-format `text` (`ADDRESS NAME [ALIAS...]`, `#`
    comments), in file order; lines with an address that is not an IP are ignored."""
    wanted = name.lower().rstrip(".")
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or wanted not in (f.lower().rstrip(".") for f in fields[1:]):
            continue
        try:
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return found


class HostsFileResolver:
    """Resolve from a hosts-format file, read again on every call (it may change any time)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __call__(self, name: str) -> list[str]:
        """`name`'s addresses in the file; [] when it is not there."""
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ResolveError(f"cannot read --dns-hosts-file {self.path}: {exc}") from exc
        return parse_hosts(text, name)


@dataclass(slots=True)
class Answer:
    """The last resolution of one target, for `/_health`."""

    addresses: tuple[str, ...] = ()
    error: str | None = None
    resolutions: int = 0


class Discovery:
    """Keeps the pool's DNS-sourced backends equal to what the names resolve to."""

    def __init__(
        self,
        pool: BackendPool,
        targets: Sequence[DnsTarget],
        resolver: Resolver,
        on_added: Callable[[list[Backend]], Awaitable[None]],
        on_retired: Callable[[list[Backend]], None],
    ) -> None:
        self.pool = pool
        self.targets = tuple(targets)
        self.resolver = resolver
        self.answers = {t: Answer() for t in self.targets}
        self._on_added = on_added
        self._on_retired = on_retired

    async def resolve_once(self) -> None:
        """Resolve every name, apply the answers to the pool, retire drained backends."""
        results = await asyncio.gather(*(self._resolve(t) for t in self.targets))
        added: list[Backend] = []
        for target, addresses in zip(self.targets, results, strict=True):
            if addresses is not None:
                added += self.pool.sync(target.source, [target.url(a) for a in addresses])
        if added:
            await self._on_added(added)
        retired = self.pool.prune()
        if retired:
            self._on_retired(retired)

    async def _resolve(self, target: DnsTarget) -> list[str] | None:
        """The addresses, or None when the resolver failed (the last answer stands)."""
        answer = self.answers[target]
        answer.resolutions += 1
        try:
            addresses = await self.resolver(target.name)
        except ResolveError as exc:
            if answer.error != str(exc):
                logger.warning(
                    "%s (keeping its last answer: %d backends)", exc, len(answer.addresses)
                )
            answer.error = str(exc)
            return None
        if answer.error is not None or tuple(addresses) != answer.addresses:
            logger.info("%s resolves to %s", target.name, ", ".join(addresses) or "nothing")
        answer.addresses, answer.error = tuple(addresses), None
        return addresses

    async def run(self, interval_s: float) -> None:
        """Resolve every `interval_s` seconds until cancelled (the first pass is the caller's)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.resolve_once()

    def document(self) -> list[dict[str, Any]]:
        """Each name's last answer, for `/_health`."""
        return [
            {
                "name": t.name,
                "port": t.port,
                "addresses": list(a.addresses),
                "error": a.error,
                "resolutions": a.resolutions,
            }
            for t, a in self.answers.items()
        ]
