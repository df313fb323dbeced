"""`Door`: what the connections of one server share — its limits, its idle keep-alive
connections, and the one timer that expires deadlines.

Each connection keeps one deadline as a float (the header, body or lingering deadline, or
infinity), so the hot path only stores a number; `Door` sweeps all connections a few times
per shortest timeout and expires those whose deadline has passed. The sweep runs while the
server has connections and re-arms itself, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Set
from dataclasses import dataclass
from typing import Protocol

from farm.common.frontdoor.settings import DoorSettings

logger = logging.getLogger(__name__)

# The sweep runs four times per shortest timeout, within these bounds.
MIN_TICK_S = 0.05
MAX_TICK_S = 1.0
# Room for a request line's method and version and the blank line, on top of the limits.
_HEAD_SLACK = 64
# At most one "connection cap reached" warning per this many seconds (a flood logs once).
_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class DoorLimits:
    """The limits one server enforces, as plain numbers (see `DoorSettings` for each)."""

    max_request_line: int
    max_headers: int
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    #: The connection cap in force: `--max-connections`, or less where `ulimit -n` is lower.
    max_connections: int
    #: Bytes of one request head read at most before it is answered 414/431. A head within
    #: every limit fits; the exact limits are checked as the parser reports each line, and
    #: this bound keeps what the parser holds meanwhile small.
    head_room: int
    #: A head read in no more bytes than this breaks no size limit (the exact check is skipped).
    small_head: int

    @classmethod
    def of(cls, settings: DoorSettings, max_connections: int) -> DoorLimits:
        """The limits of `settings`, with the connection cap the descriptor budget allows."""
        return cls(
            max_request_line=settings.max_request_line,
            max_headers=settings.max_headers,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.client_header_timeout,
            body_timeout_s=settings.client_body_timeout,
            max_connections=max_connections,
            head_room=settings.max_request_line + settings.max_header_bytes + _HEAD_SLACK,
            small_head=min(settings.max_request_line, settings.max_header_bytes),
        )

    @property
    def tick_s(self) -> float:
        """How often deadlines are checked."""
        shortest = min(self.header_timeout_s, self.body_timeout_s)
        return min(MAX_TICK_S, max(MIN_TICK_S, shortest / 4))


class Watched(Protocol):
    """A connection as the door sees it."""

    door_deadline: float

    def expire(self, now: float) -> None:
        """Its deadline has passed: close it (with an answer where one is due)."""

    def evict(self) -> bool:
        """Close it to make room for a new client; False if it was already closing."""


class Door:
    """Shared by every connection of one server; made by `door_config`."""

    def __init__(self, limits: DoorLimits) -> None:
        self.limits = limits
        #: Connections idle in keep-alive, oldest first (evicted first when the cap is hit).
        self.idle: dict[Watched, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._warned_at = -math.inf

    def watch(self, loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
        """Make sure the sweep runs while `connections` (uvicorn's live set) is not empty."""
        if self._timer is None:
            self._timer = loop.call_later(self.limits.tick_s, self._sweep, loop, connections)

    def _sweep(self, loop: asyncio.AbstractEventLoop, connections: Set[object]) -> None:
        self._timer = None
        now = loop.time()
        # A WebSocket protocol (if a service enables them) has no deadline of ours.
        expired = [c for c in connections if getattr(c, "door_deadline", math.inf) <= now]
        for conn in expired:
            conn.expire(now)  # type: ignore[attr-defined]
        if connections:
            self.watch(loop, connections)

    def evict_idle(self) -> bool:
        """Close the connection idle longest, to make room; False if none is idle."""
        while self.idle:
            conn = next(iter(self.idle))
            del self.idle[conn]
            if conn.evict():
                return True
        return False

    def warn_full(self, now: float) -> None:
        """Log that the cap turned a client away (at most every `_WARN_EVERY_S`)."""
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            logger.warning(
                "connection cap of %d reached with no idle connection to close: answering "
                "503 (raise --max-connections or ulimit -n)",
                self.limits.max_connections,
            )
