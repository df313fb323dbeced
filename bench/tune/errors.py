"""The tuner's errors: each is one line naming the problem and the way forward.

BenchError (bench.errors)
└── TuneError            a tune that cannot go on
    ├── CannotRetune     the backend is an external URL: its NUM_PARALLEL is not ours to set
    ├── ModelMissing     the backend has no such model and cannot pull it
    ├── BackendFailed    the backend did not start with a candidate's setting
    ├── BackendDied      the backend (or the proxy) exited while a level was measured
    └── Interrupted      Ctrl-C: the report of what was measured is written, then this
"""

from __future__ import annotations

from bench.errors import BenchError


class TuneError(BenchError):
    """A tune that cannot go on; what was measured so far is kept."""


class CannotRetune(TuneError):
    """An external Ollama cannot be restarted with another NUM_PARALLEL."""


class ModelMissing(TuneError):
    """The model is not on the backend and could not be pulled."""


class BackendFailed(TuneError):
    """The launcher could not start the backend with a candidate's NUM_PARALLEL."""


class BackendDied(TuneError):
    """The backend or the proxy exited during the tune."""


class Interrupted(TuneError):
    """The operator stopped the tune; its message says where."""
