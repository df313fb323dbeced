"""The settings layer's one error: a value that a flag, variable or `.env` line cannot hold.

SettingsError   one line naming the flag or variable, the value and what is allowed
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A setting's value is invalid; `str(exc)` is one line meant for the operator."""
