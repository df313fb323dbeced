"""Who is asking: the request's key, resolved to a principal with its limits and rights.

Keys come from the key database (`farm.keys`), looked up on every request so that a revoked
key is refused from its next request on, without a restart (an indexed lookup by hash costs
tens of microseconds). `FARM_API_KEY`, when set, keeps working as one unnamed key with every
right. Only a key created with `--relay` may name the NKN peer it acts for
(`x-farm-peer`): that peer becomes the principal, with its own key's limits if one is
registered for it (`keys add NAME --nkn-peer ADDR`), else the relay key's limits per peer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from farm.keys.records import KeyRecord, Limits
from farm.keys.store import KeyStore
from farm.proxy.errors import ForbiddenError, UnauthorizedError
from farm.proxy.headers import header_value

PROTECTED_PREFIXES = ("/api/", "/v1/")
PEER_HEADER = b"x-farm-peer"
UNNAMED = "(FARM_API_KEY)"
ANONYMOUS = "(anonymous)"
# What changes the farm: only admin keys may call it.
_ADMIN_ROUTES = {
    ("POST", "/api/pull"),
    ("POST", "/api/push"),
    ("POST", "/api/create"),
    ("POST", "/api/copy"),
    ("DELETE", "/api/delete"),
}
_BEARER = b"bearer "
_MISSING = "missing or invalid API key (send Authorization: Bearer <key>)"


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a request is counted against."""

    name: str
    limits: Limits
    #: Whether the fair queue and usage apply (a named key, or a peer behind the relay).
    named: bool


def is_admin_route(method: str, path: str) -> bool:
    """Whether this call changes the farm's models."""
    return (method, path) in _ADMIN_ROUTES or (method == "POST" and path.startswith("/api/blobs/"))


class Tenancy:
    """Resolves requests to principals; `enabled` is False when no key of any kind exists."""

    def __init__(self, api_key: str | None, db_path: Path | None) -> None:
        self._expected = f"Bearer {api_key}".encode() if api_key else None
        self.store = KeyStore(db_path) if db_path is not None else None
        self._has_keys = False

    @property
    def named_keys(self) -> bool:
        """Whether the database holds any key (checked until the first one appears)."""
        if not self._has_keys and self.store is not None:
            self._has_keys = self.store.has_keys()
        return self._has_keys

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return self._expected is not None or self.named_keys

    def close(self) -> None:
        """Close the database."""
        if self.store is not None:
            self.store.close()

    def resolve(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Principal | None:
        """The request's principal; None when it needs none. Raises 401 / 403 errors."""
        if not path.startswith(PROTECTED_PREFIXES) or not self.enabled:
            return None
        given = header_value(headers, b"authorization")
        if given is None:
            raise UnauthorizedError(_MISSING)
        # Constant-time comparison: the key must not leak through response timing.
        if self._expected is not None and hmac.compare_digest(given, self._expected):
            return Principal(UNNAMED, Limits(), named=False)
        record = self._lookup(given)
        if record is None:
            raise UnauthorizedError(_MISSING)
        if not record.active:
            raise UnauthorizedError(f"API key {record.name!r} has been revoked")
        if is_admin_route(method, path) and not record.admin:
            raise ForbiddenError(
                f"key {record.name!r} may not call {method} {path}: it needs an admin key "
                "(invoke keys add NAME --admin)"
            )
        peer = header_value(headers, PEER_HEADER)
        if peer is not None and record.relay:
            return self._peer(record, peer.decode("utf-8", "replace"))
        return Principal(record.name, record.limits, named=True)

    def _lookup(self, given: bytes) -> KeyRecord | None:
        if self.store is None or not given[: len(_BEARER)].lower() == _BEARER:
            return None
        secret = given[len(_BEARER) :].strip().decode("utf-8", "replace")
        return self.store.lookup(secret) if secret else None

    def _peer(self, relay: KeyRecord, peer: str) -> Principal:
        assert self.store is not None
        # Registered by full address (`name.pubkey`) or by public key alone.
        own = self.store.for_peer(peer) or self.store.for_peer(peer.rsplit(".", 1)[-1])
        if own is not None and own.active:
            return Principal(own.name, own.limits, named=True)
        # No key of its own: the relay key's limits, per peer.
        return Principal(f"{relay.name}/{peer}", relay.limits, named=True)
