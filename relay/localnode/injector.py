"""`FaultInjector`: carries out the fault plan's decisions and counts traffic per direction.

Every message the node routes passes `route()` with a callable that delivers it once. A clean
message is delivered at once, in the order its sender sent it; a dropped one never; a
duplicated one twice in a row; a delayed one by a task after `--fault-delay-ms`; a reordered
one is held until the next message to the same destination has been delivered, then follows
it (or is delivered alone after `--fault-reorder-window-ms`, so that the last message of a
burst is never stuck); a message both delayed and reordered is only delayed. The counters
(`snapshot()`) are what senders sent, before any fault: they are how a benchmark counts
messages and bytes on the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from relay.localnode.faults import DIRECTIONS, Direction, FaultPlan, FaultRates, pubkey_of
from relay.localnode.settings import LocalNodeSettings

log = logging.getLogger(__name__)

#: Delivers one copy of one message (to every socket of its destination).
Deliver = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Traffic:
    """One direction's counts: what was sent (`messages`, payload `bytes`) and what was faulted."""

    messages: int = 0
    bytes: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    reordered: int = 0


@dataclass(slots=True)
class _Held:
    """A reordered message waiting for the next message to its destination."""

    deliver: Deliver
    copies: int
    timer: asyncio.TimerHandle


def fault_plan(config: LocalNodeSettings) -> FaultPlan:
    """The plan of the node's `--subject-key`, `--fault-seed` and fault fractions."""
    rates: dict[Direction, FaultRates] = {
        "to": FaultRates(
            config.fault_to_drop,
            config.fault_to_duplicate,
            config.fault_to_delay,
            config.fault_to_reorder,
        ),
        "from": FaultRates(
            config.fault_from_drop,
            config.fault_from_duplicate,
            config.fault_from_delay,
            config.fault_from_reorder,
        ),
    }
    return FaultPlan(pubkey_of(config.subject_key), rates, config.fault_seed)


class FaultInjector:
    """Applies a `FaultPlan` to every routed message; lives on the node's state."""

    def __init__(self, plan: FaultPlan, delay_s: float, reorder_window_s: float) -> None:
        self.plan = plan
        self.delay_s = delay_s
        self.reorder_window_s = reorder_window_s
        self.traffic: dict[Direction, Traffic] = {d: Traffic() for d in DIRECTIONS}
        self._held: dict[str, _Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, config: LocalNodeSettings) -> FaultInjector:
        """The injector the node's settings ask for (no faults by default)."""
        delay_s, window_s = config.fault_delay_ms / 1000, config.fault_reorder_window_ms / 1000
        return cls(fault_plan(config), delay_s, window_s)

    async def route(self, src: str, dest: str, size_b: int, deliver: Deliver) -> None:
        """Count one message of `size_b` payload bytes and deliver it as its decision says."""
        direction = self.plan.direction(src, dest)
        counts = self.traffic[direction]
        counts.messages += 1
        counts.bytes += size_b
        decision = self.plan.decide(direction)
        if decision.drop:
            counts.dropped += 1
            log.debug("fault: dropped a message %s %s", direction, dest)
            return
        copies = 2 if decision.duplicate else 1
        counts.duplicated += copies - 1
        if decision.delay:
            counts.delayed += 1
            self._spawn(self._later(self.delay_s, deliver, copies))
            return
        if decision.reorder and dest not in self._held:
            counts.reordered += 1
            timer = asyncio.get_running_loop().call_later(
                self.reorder_window_s, self._window_passed, dest
            )
            self._held[dest] = _Held(deliver, copies, timer)
            return
        for _ in range(copies):
            await deliver()
        await self._release(dest)

    async def _release(self, dest: str) -> None:
        """Deliver the message held back for `dest`, if any, after the one just delivered."""
        held = self._held.pop(dest, None)
        if held is None:
            return
        held.timer.cancel()
        for _ in range(held.copies):
            await held.deliver()

    def _window_passed(self, dest: str) -> None:
        held = self._held.pop(dest, None)
        if held is not None:
            self._spawn(self._later(0.0, held.deliver, held.copies))

    async def _later(self, delay_s: float, deliver: Deliver, copies: int) -> None:
        await asyncio.sleep(delay_s)
        for _ in range(copies):
            await deliver()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A late delivery to a socket that closed meanwhile: lost, as on the real network.
            log.debug("fault: late delivery failed: %r", exc)

    async def close(self) -> None:
        """Forget held messages and stop late deliveries (the node is shutting down)."""
        for held in self._held.values():
            held.timer.cancel()
        self._held.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> dict[str, object]:
        """JSON for the node's state: the subject and each direction's counts."""
        return {
            "subject_key": self.plan.subject_key,
            "traffic": {d: asdict(t) for d, t in self.traffic.items()},
        }
