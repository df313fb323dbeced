"""`FairQueue`: the proxy's own admission queue in front of the backends' slots.

Ollama serves `num_parallel` requests per backend and queues the rest first come, first
served, so one client with 50 streams makes everyone else wait behind all of them. With
named keys the proxy holds what does not fit in the slots here instead, and admits by
deficit round robin across principals (each visit adds a principal's weight to its deficit;
one admission costs 1), skipping a principal at its `max_streams`. Its `max_queued` and
`tokens_per_min` are answered at once with `OverQuota` (429). A waiter that is cancelled
(its client left) leaves the queue at once. Pure asyncio, no I/O.

Round robin alone is not enough for the commonest sharing: one person with one conversation
beside an agent with thirty streams. Between two of the person's requests their slot frees
and the agent's queue takes it, so each of their turns waits for one of the agent's answers
to end. So a principal whose last request ended less than `idle_reserve_s` ago keeps one
slot free for itself (never more than all slots but one, in all): a little capacity stays
idle on purpose, and the person's next turn starts at once.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from farm.keys.records import Limits

TOKEN_WINDOW_S = 60.0


class OverQuota(Exception):
    """A request refused by its principal's limits; `retry_after_s` is the honest wait."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Principal:
    name: str
    limits: Limits
    active: int = 0
    deficit: float = 0.0
    waiters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    # (finish time, output tokens) of the last minute, for `tokens_per_min`.
    spent: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    spent_total: int = 0
    last_done: float = -math.inf

    def can_run(self) -> bool:
        cap = self.limits.max_streams
        return cap is None or self.active < cap


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request; hand it back to `FairQueue.release`."""

    principal: str


class FairQueue:
    """Admission to `capacity()` slots, fair across principals."""

    def __init__(
        self,
        capacity: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        idle_reserve_s: float = 0.0,
    ) -> None:
        self._capacity = capacity
        self._clock = clock
        self._idle_reserve_s = idle_reserve_s
        self._timer: asyncio.TimerHandle | None = None
        self._principals: dict[str, _Principal] = {}
        self._ring: collections.deque[str] = collections.deque()  # principals with waiters
        self.in_use = 0

    def queued(self, name: str | None = None) -> int:
        """Requests waiting (for one principal, or in all)."""
        if name is not None:
            p = self._principals.get(name)
            return len(p.waiters) if p else 0
        return sum(len(p.waiters) for p in self._principals.values())

    def active(self, name: str) -> int:
        """Requests of `name` holding a slot now."""
        p = self._principals.get(name)
        return p.active if p else 0

    def seed_tokens(self, spent: dict[str, int]) -> None:
        """Count tokens spent in the last minute before a restart (from the usage table)."""
        now = self._clock()
        for name, tokens in spent.items():
            p = self._principals.setdefault(name, _Principal(name, Limits()))
            p.spent.append((now, tokens))
            p.spent_total += tokens

    def try_admit(self, name: str, limits: Limits) -> Ticket | None:
        """A slot now if one is free for `name` (None: it must wait); `OverQuota` when its
        limits refuse the request."""
        p = self._principals.get(name)
        if p is None:
            p = self._principals[name] = _Principal(name, limits)
        p.limits = limits  # a key's limits may have changed since its last request
        self._check_tokens(p)
        if not p.waiters and p.can_run() and self._free() > self._reserved(p):
            self._grant(p)
            return Ticket(name)
        return None

    async def admit(self, name: str, limits: Limits) -> Ticket:
        """Wait for a slot; raises `OverQuota` when `limits` refuse the request now."""
        ticket = self.try_admit(name, limits)
        if ticket is not None:
            return ticket
        p = self._principals[name]
        cap = limits.max_queued
        if cap is not None and len(p.waiters) >= cap:
            raise OverQuota(
                f"key {name!r} already has {len(p.waiters)} requests waiting "
                f"(its limit, --max-queued {cap}); retry when one has started",
                retry_after_s=1.0,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        p.waiters.append(waiter)
        if len(p.waiters) == 1:
            self._ring.append(name)
        self.dispatch()  # a slot may be free but held: this arms the hold's timer
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._return_slot(p)  # granted and cancelled in the same turn
            else:
                self._forget(p, waiter)
            raise
        return Ticket(name)

    def release(self, ticket: Ticket, output_tokens: int = 0) -> None:
        """Free the slot; `output_tokens` count against the principal's per-minute budget."""
        p = self._principals[ticket.principal]
        now = self._clock()
        if output_tokens:
            p.spent.append((now, output_tokens))
            p.spent_total += output_tokens
        p.last_done = now
        self._return_slot(p)

    # --- internals ----------------------------------------------------------------------------
    def _grant(self, p: _Principal) -> None:
        p.active += 1
        self.in_use += 1

    def _return_slot(self, p: _Principal) -> None:
        p.active -= 1
        self.in_use -= 1
        self.dispatch()

    def _forget(self, p: _Principal, waiter: asyncio.Future[None]) -> None:
        try:
            p.waiters.remove(waiter)
        except ValueError:
            return
        if not p.waiters:
            self._drop_from_ring(p.name)

    def _drop_from_ring(self, name: str) -> None:
        try:
            self._ring.remove(name)
        except ValueError:
            pass
        self._principals[name].deficit = 0.0

    def _free(self) -> int:
        return self._capacity() - self.in_use

    def _reserved(self, p: _Principal) -> int:
        """Slots kept for other principals that finished a request a moment ago."""
        if self._idle_reserve_s <= 0:
            return 0
        since = self._clock() - self._idle_reserve_s
        idle = sum(
            1
            for q in self._principals.values()
            if q is not p and not q.active and not q.waiters and q.last_done > since
        )
        return min(idle, self._capacity() - 1)

    def dispatch(self) -> None:
        """Admit waiters while slots are free (also called when the capacity grows)."""
        while self._ring and self._free() > 0:
            if not any(self._eligible(self._principals[n]) for n in self._ring):
                self._recheck_later()
                return
            name = self._ring[0]
            p = self._principals[name]
            if not self._eligible(p):
                self._ring.rotate(-1)
                continue
            # A visit adds the weight; a principal keeps the head while its deficit lasts,
            # so weight 3 gets three admissions per round to weight 1's one.
            if p.deficit < 1.0:
                p.deficit += p.limits.weight
            if p.deficit < 1.0:
                self._ring.rotate(-1)
                continue
            waiter = p.waiters.popleft()
            if waiter.done():
                # Cancelled (its client left) but its task has not run its cleanup yet.
                if not p.waiters:
                    self._drop_from_ring(name)
                continue
            p.deficit -= 1.0
            if not p.waiters:
                self._drop_from_ring(name)
            elif p.deficit < 1.0:
                self._ring.rotate(-1)
            self._grant(p)
            waiter.set_result(None)

    def _eligible(self, p: _Principal) -> bool:
        return p.can_run() and self._free() > self._reserved(p)

    def _recheck_later(self) -> None:
        """Slots are held back for idle principals: look again when the oldest hold ends."""
        if self._timer is not None or self._idle_reserve_s <= 0:
            return
        since = self._clock() - self._idle_reserve_s
        holds = [
            q.last_done
            for q in self._principals.values()
            if not q.active and not q.waiters and q.last_done > since
        ]
        delay = max(0.001, min(holds) - since) if holds else 0.001

        def again() -> None:
            self._timer = None
            self.dispatch()

        self._timer = asyncio.get_running_loop().call_later(delay, again)

    def _check_tokens(self, p: _Principal) -> None:
        budget = p.limits.tokens_per_min
        now = self._clock()
        while p.spent and p.spent[0][0] <= now - TOKEN_WINDOW_S:
            p.spent_total -= p.spent.popleft()[1]
        if budget is None or p.spent_total < budget:
            return
        # The budget frees up as the oldest tokens leave the one-minute window.
        freed, wait = p.spent_total, 0.0
        for when, tokens in p.spent:
            freed -= tokens
            wait = when + TOKEN_WINDOW_S - now
            if freed < budget:
                break
        raise OverQuota(
            f"key {p.name!r} used {p.spent_total} output tokens in the last minute "
            f"(its limit, --tokens-per-min {budget})",
            retry_after_s=max(1.0, math.ceil(wait)),
        )
