"""A byte-progress display (bytes, rate, ETA) for model and image pulls, drawn with rich.

One bar per layer (keyed by digest or layer id). Drawn on stderr; when stderr is not a terminal
rich prints nothing live, and the caller's log lines still say what happened.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class PullProgress:
    """Context manager: `update(key, label, completed, total)` per progress event."""

    def __init__(self, title: str) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._title = title
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> PullProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, key: str, label: str, completed: int, total: int | None) -> None:
        """Advance the bar for `key` (created on first sight)."""
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = self._progress.add_task(f"{self._title} {label}", total=total)
        self._progress.update(task, completed=completed, total=total)
