"""GPU setup's error hierarchy: why `python -m farm.gpu` stopped.

Each message is one line meant for the operator; the entry point prints it and exits 1. Bad
settings never get here: the settings layer refuses them first (`farm.settings.SettingsError`).

    SetupError             a step failed part-way; the message says which
    └── SetupRefused       wrong OS, no driver, not root: nothing was changed
    NvmlUnavailable        NVML cannot list the GPUs: driver not loaded, no access, mismatch
    └── NoNvidiaDriver     no NVML library at all: no NVIDIA driver is installed
"""

from __future__ import annotations


class SetupError(Exception):
    """GPU setup failed part-way; the message says which step."""


class SetupRefused(SetupError):
    """GPU setup refuses to run on this host; nothing was changed."""


class NvmlUnavailable(Exception):
    """NVML cannot start or read the GPUs; the message names the cause and the way forward."""


class NoNvidiaDriver(NvmlUnavailable):
    """No NVML library: this host has no NVIDIA driver installed."""
