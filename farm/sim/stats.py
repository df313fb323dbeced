"""Request counters shown by `GET /_sim/state`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RequestStats:
    """How many inference requests started, finished, were cancelled by their client, failed."""

    started: int = 0
    finished: int = 0
    cancelled: int = 0
    failed: int = 0

    def as_json(self) -> dict[str, int]:
        """The `requests` object of `/_sim/state`."""
        return {
            "started": self.started,
            "finished": self.finished,
            "cancelled": self.cancelled,
            "failed": self.failed,
        }
