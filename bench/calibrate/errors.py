"""Calibration errors, each one line that names the problem and the fix.

CalibrateError
├── BackendGone   the backend is unreachable, lacks the model, or failed a probe
└── FitError      the probes cannot determine a parameter (too few or degenerate points)
"""

from __future__ import annotations


class CalibrateError(Exception):
    """Base of the errors a calibration reports to its user."""


class BackendGone(CalibrateError):
    """The backend cannot be measured (unreachable, no such model, a failed request)."""


class FitError(CalibrateError):
    """The probes do not determine the timing model."""
