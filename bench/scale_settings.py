"""`RelayScaleSettings`: what `python -m bench.relay_scale` runs, each setting declared once.

Kept apart from the benchmark's code so that `tasks.py` can build `invoke relay-bench` from it
without importing the relay and the NKN transport. `Plan` is the rig's view of the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator

from farm.settings import ServiceSettings, setting

#: The peer paths: the seed's DM API, and the negotiated fast path (`bench.scale_rig.PATHS`).
PATH_NAMES = ("seed", "fast")


@dataclass(frozen=True, slots=True)
class Level:
    """One concurrency level: `streams` at once, spread over `peers` NKN identities."""

    streams: int
    peers: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What `measure_relay` runs for one loss level (built from the bench's settings)."""

    paths: tuple[str, ...]
    levels: tuple[Level, ...]
    rounds: int
    max_tokens: int
    lines_expected: int
    seed: int
    idle_timeout_s: float
    num_subclients: int


def _csv(value: object) -> object:
    """The items of a comma list, or of a repeated option whose values are comma lists."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return value
    return [part.strip() for item in value for part in str(item).split(",") if part.strip()]


def _level(text: str) -> Level:
    """`N` (N streams, one peer) or `NxP` (N streams from P peers, 1 <= P <= N)."""
    streams, _, peers = text.lower().partition("x")
    try:
        level = Level(int(streams), int(peers or 1))
    except ValueError:
        raise ValueError(f"level {text!r}: expected N or NxP, e.g. 9 or 256x32") from None
    if not 1 <= level.peers <= level.streams:
        raise ValueError(f"level {text!r}: 1 to N peers for N streams")
    return level


def _level_text(level: Level) -> str:
    return str(level.streams) if level.peers == 1 else f"{level.streams}x{level.peers}"


class RelayScaleSettings(ServiceSettings):
    """What to run; every field lands in the summary."""

    prog = "python -m bench.relay_scale"
    summary = "The relay at scale: 1, 9 and 256 streams over the local NKN node, with loss."

    levels: tuple[str, ...] = setting(
        ("1", "9", "256x32"),
        help="concurrency levels, a comma list: N (N streams from one peer) or NxP "
        "(N streams from P peers)",
        metavar="N[xP],…",
        min_length=1,
    )
    paths: tuple[str, ...] = setting(
        ("seed", "fast"),
        help="peer paths: seed (the seed's DM API), fast (the negotiated fast path)",
        metavar="P,P",
        min_length=1,
    )
    loss: tuple[float, ...] = setting(
        (0.0, 0.05),
        help="injected loss, fraction of the messages dropped each way, a comma list",
        metavar="F,F",
        min_length=1,
    )
    rounds: int = setting(2, help="rounds per level", ge=1)
    max_tokens: int = setting(100, help="tokens per answer (num_predict)", ge=1)
    decode_ms: float = setting(20.0, help="simulated ms per token", ge=0, allow_inf_nan=False)
    seed: int = setting(1, help="seed of the prompts, the simulator and the injected loss")
    idle_timeout_s: float = setting(
        10.0, help="a peer gives a stream up after this long without a frame, s", gt=0
    )
    num_subclients: int = setting(1, help="NKN sub-clients of the relay and of each peer", ge=1)
    out_dir: Path = setting(Path("results/relay_scale"), help="parent of the timestamped result")

    @field_validator("levels", "paths", "loss", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _csv(value)

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        levels = [_level(text) for text in value]
        if len({level.streams for level in levels}) != len(levels):
            raise ValueError("a stream count is given twice")
        return tuple(_level_text(level) for level in levels)

    @field_validator("paths")
    @classmethod
    def _known_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PATH_NAMES]
        if unknown:
            raise ValueError(f"unknown path {unknown[0]!r}; use {' or '.join(PATH_NAMES)}")
        return value

    @field_validator("loss")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= f < 1 for f in value):
            raise ValueError("each loss is a fraction, 0 <= f < 1")
        return value

    @property
    def lines_expected(self) -> int:
        """Lines of every answer: one per token, and the final `done` line."""
        return self.max_tokens + 1

    def plan(self) -> Plan:
        """The rig's view of these settings."""
        return Plan(
            paths=self.paths,
            levels=tuple(_level(text) for text in self.levels),
            rounds=self.rounds,
            max_tokens=self.max_tokens,
            lines_expected=self.lines_expected,
            seed=self.seed,
            idle_timeout_s=self.idle_timeout_s,
            num_subclients=self.num_subclients,
        )
