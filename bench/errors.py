"""The benchmark's error hierarchy: what can go wrong before, during and after a run.

BenchError
├── ConfigError     bad flag or environment value (names the flag or variable)
├── PromptError     a prompt file that cannot be read or parsed (names file and line)
├── WireError       a stream line that is not valid NDJSON / SSE
├── TargetError     a target that cannot be reached or described (health, version)
├── RunError        the load generator failed (locust exited badly, no rows written)
└── ReportError     result folder missing or unreadable
"""

from __future__ import annotations


class BenchError(Exception):
    """Base class of every error the benchmark raises on purpose."""


class ConfigError(BenchError):
    """A configuration value is missing or invalid."""


class PromptError(BenchError):
    """A prompt set or prompt file is invalid."""


class WireError(BenchError):
    """A streamed line could not be decoded."""


class TargetError(BenchError):
    """A target (proxy, backend, relay) could not be reached or queried."""


class RunError(BenchError):
    """The load generator did not complete a run."""


class ReportError(BenchError):
    """A result folder cannot be read or rendered."""
