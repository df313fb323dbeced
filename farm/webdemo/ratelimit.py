"""`RateLimiter`: a token bucket per client address, for the site's seed RPC forwarder.

Each address gets `burst` tokens, refilled at `rate` per second; a call spends one, and a call
that finds none is refused. Buckets are kept for at most `max_clients` addresses, the least
recently seen dropped first: memory stays bounded however many addresses call, and a dropped
address only starts again with a full bucket, which a flood of distinct addresses would get
anyway.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets kept at most (each is a few dozen bytes).
MAX_CLIENTS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp_s: float


class RateLimiter:
    """Token buckets keyed by client address; `clock` gives monotonic seconds (tests pass one)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be positive, burst and max_clients at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Spend one of `client`'s tokens; False when it has none left."""
        now = self._clock()
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
        else:
            refill = (now - bucket.stamp_s) * self._rate
            bucket.tokens = min(self._burst, bucket.tokens + refill)
            bucket.stamp_s = now
        self._buckets[client] = bucket  # most recently seen last
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def retry_after_s(self, client: str) -> float:
        """Seconds until `client` has a token again (0 when it has one now)."""
        bucket = self._buckets.get(client)
        if bucket is None:
            return 0.0
        missing = 1.0 - bucket.tokens - (self._clock() - bucket.stamp_s) * self._rate
        return max(0.0, missing / self._rate)
