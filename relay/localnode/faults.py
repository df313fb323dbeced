"""The fault plan: which messages the local node drops, duplicates, delays or reorders.

NKN promises nothing about delivery: a direct message may be lost, arrive twice, late or out
of order. The local node is a perfect network unless told otherwise; a fault plan makes it an
imperfect one on purpose, so that tests and benchmarks can show what a peer and the relay do
then.

**Directions** are relative to one NKN identity, the *subject* (`--subject-key`, a public
key; in tests and benchmarks the relay's):

- `to`: messages addressed to any address with the subject's key (`pk`, `name.pk`,
  `__0__.name.pk`: every sub-client of a MultiClient counts);
- `from`: messages sent by any address with that key;
- `other`: all the rest. They are counted, never faulted. A message from the subject to
  itself counts as `to`.

**Decisions** are drawn per message (per destination of a multicast) from one seeded random
stream per direction: the k-th message of a direction always gets the same decision for the
same `--fault-seed`, and each fault has its own draw, so changing one fraction leaves the
messages the other faults hit unchanged. What the k-th message *is* depends on the order in
which clients send, which a test makes deterministic by sending from one socket.

This module is pure (no I/O, no clock): `relay.localnode.injector` carries the decisions out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["to", "from", "other"]
DIRECTIONS: tuple[Direction, ...] = ("to", "from", "other")


def pubkey_of(address: str) -> str:
    """The public key of an NKN address: its last dot-segment, lower case."""
    return address.rsplit(".", 1)[-1].lower()


@dataclass(frozen=True, slots=True)
class FaultRates:
    """The fraction (0..1) of one direction's messages each fault hits."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0

    @property
    def any(self) -> bool:
        """Whether any fault is on."""
        return bool(self.drop or self.duplicate or self.delay or self.reorder)


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one message: dropped (nothing else then), or delivered with its faults.

    `duplicate`: delivered twice, the copy right after the original. `delay`: held back for
    the plan's delay. `reorder`: held back until the next message to the same destination has
    been delivered (or the reorder window passes).
    """

    drop: bool = False
    duplicate: bool = False
    delay: bool = False
    reorder: bool = False


CLEAN = Decision()


@dataclass(slots=True)
class _Stream:
    """One direction's rates and its own seeded random stream."""

    rates: FaultRates
    rng: random.Random

    def next(self) -> Decision:
        # Four draws per message, always, so each fault's choices are independent of the others.
        drop, duplicate, delay, reorder = (self.rng.random() for _ in range(4))
        rates = self.rates
        if drop < rates.drop:
            return Decision(drop=True)
        return Decision(
            duplicate=duplicate < rates.duplicate,
            delay=delay < rates.delay,
            reorder=reorder < rates.reorder,
        )


@dataclass(slots=True)
class FaultPlan:
    """Classifies messages by direction and decides each one's faults (see the module doc)."""

    subject_key: str = ""
    rates: dict[Direction, FaultRates] = field(default_factory=dict)
    seed: int = 0
    _streams: dict[Direction, _Stream] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.subject_key = self.subject_key.lower()
        for direction in ("to", "from"):
            rates = self.rates.get(direction, FaultRates())
            # A string seed is hashed the same way in every process (unlike hash()).
            rng = random.Random(f"{self.seed}:{direction}")
            self._streams[direction] = _Stream(rates, rng)

    @property
    def active(self) -> bool:
        """Whether any message can be faulted at all."""
        return bool(self.subject_key) and any(s.rates.any for s in self._streams.values())

    def direction(self, src: str, dest: str) -> Direction:
        """The direction of a message from `src` to `dest`, relative to the subject."""
        if not self.subject_key:
            return "other"
        if pubkey_of(dest) == self.subject_key:
            return "to"
        if pubkey_of(src) == self.subject_key:
            return "from"
        return "other"

    def decide(self, direction: Direction) -> Decision:
        """The next message of `direction`'s faults; `other` is never faulted."""
        stream = self._streams.get(direction)
        if stream is None or not stream.rates.any:
            return CLEAN
        return stream.next()
