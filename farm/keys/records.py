"""The records the key store holds: a key's policy (`KeyRecord`) and one finished request
(`UsageRow`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """What one key may hold at once; None means no limit."""

    max_streams: int | None = None
    max_queued: int | None = None
    tokens_per_min: int | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A named key as stored (its secret never is: only its hash)."""

    name: str
    limits: Limits
    admin: bool
    #: The key may name the principal it acts for (`x-farm-peer`): the NKN relay's own key.
    relay: bool
    #: The NKN peer (address or public key) this key stands for when the relay forwards it.
    nkn_peer: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        """Whether requests with this key are accepted."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One finished request, as the proxy saw it end."""

    key: str
    model: str
    prompt_tokens: int
    output_tokens: int
    ttft_s: float | None
    duration_s: float
    status: int
    finished_at: float
