"""`--backend-url`: an Ollama someone else runs. The farm neither starts nor stops it."""

from __future__ import annotations

from farm.launch.backend import BackendRecord


class ExternalBackend:
    """A backend reached by URL only."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url.rstrip("/")
        self.name = name

    @property
    def url(self) -> str:
        """The URL as given."""
        return self._url

    def start(self) -> None:
        """Nothing to start; readiness is still awaited by the caller."""

    def alive(self) -> bool:
        """Always True: we cannot observe its process, only its answers."""
        return True

    def log_tail(self, lines: int = 20) -> str:
        """No access to its logs."""
        return ""

    def stop(self) -> None:
        """Never stops what the farm did not start."""

    def record(self) -> BackendRecord:
        """URL only."""
        return BackendRecord(kind="external", url=self._url, name=self.name)
