"""The simulator's error hierarchy.

SimError
├── ClientGone          the HTTP client disconnected; the request is abandoned
├── EngineUnavailable   the engine cannot start here (a missing piece); says the fix
├── ProfileError        a timing profile (TOML) that cannot be read; names file and key
└── ApiError            an error Ollama reports as {"error": "..."} with a status
    ├── BadRequest      400
    ├── NotFound        404
    ├── RunnerFailure   500 (runner/option failures, injected faults)
    └── ServerBusy      503 (scheduler queue full)
"""

from __future__ import annotations

BUSY_TEXT = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_DIED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)


class SimError(Exception):
    """Base of every error the simulator raises on purpose."""


class ClientGone(SimError):
    """The client closed its connection; nothing more can be sent to it."""


class EngineUnavailable(SimError):
    """The chosen engine cannot run on this machine; the message is one line with the fix."""


class ProfileError(SimError, ValueError):
    """A `--profile` file that is missing, not TOML, or holds an unknown or mistyped key.

    A ValueError too, so that the settings layer reports it as one line about `--profile`.
    """


class ApiError(SimError):
    """An error answered as `{"error": message}` with an HTTP status."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """400: malformed body, wrong field type, invalid name or option."""

    status = 400


class NotFound(ApiError):
    """404: unknown model or blob."""

    status = 404


class RunnerFailure(ApiError):
    """500: what a crashed runner or a bad option type produces."""

    status = 500


class ServerBusy(ApiError):
    """503: the scheduler's pending queue is full (Ollama's exact text)."""

    status = 503

    def __init__(self) -> None:
        super().__init__(BUSY_TEXT)
