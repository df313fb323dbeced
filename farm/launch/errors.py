"""The farm launcher's error hierarchy: every failure of `python -m farm` a user can act on.

Each error's message is one line meant for the operator; the entry point prints it and exits
non-zero. Foreign exceptions (docker SDK, httpx, OSError) are translated where they arise. Bad
flag and environment values never get here: the settings layer refuses them first
(`farm.settings.SettingsError`).

    FarmError
    ├── ConfigError            a flag that does not fit the recorded farm (--replica 3 of 2)
    ├── PreflightError         the host is not ready: port taken, no engine, unusable models dir
    │   └── PortInUse          a port we need is bound by someone else
    ├── BackendError           a backend failed to start, answer or stop
    │   ├── GpuUnavailable     Docker has no NVIDIA device driver ("could not select device driver")
    │   └── BackendNotReady    the backend did not answer `GET /` before the deadline
    ├── PullError              `/api/pull` (model) or an image pull failed
    ├── WarmupError            the warm-up generate failed
    ├── DoesNotFit             the model's estimated memory exceeds the GPU's free memory
    ├── ProxyError             the proxy subprocess failed to start or become ready
    └── StateError             `.farm/state.json` missing, unreadable or describing a live farm
"""

from __future__ import annotations


class FarmError(Exception):
    """Base class: a failure the operator can act on; str(exc) is one line."""


class ConfigError(FarmError):
    """A flag's value does not fit the farm it acts on."""


class PreflightError(FarmError):
    """The host cannot run the farm as asked; nothing has been started."""


class PortInUse(PreflightError):
    """A port the farm needs is already bound."""


class BackendError(FarmError):
    """A backend (container, process, simulator) failed."""


class GpuUnavailable(BackendError):
    """Docker cannot hand a GPU to the container: the NVIDIA toolkit is missing or not loaded."""


class BackendNotReady(BackendError):
    """The backend did not answer in time."""


class PullError(FarmError):
    """Pulling a model (or a container image) failed."""


class WarmupError(FarmError):
    """The warm-up request failed."""


class DoesNotFit(FarmError):
    """Weights plus KV cache would not fit the GPU's free memory (`--force` starts anyway)."""


class ProxyError(FarmError):
    """The proxy did not start or never became ready."""


class StateError(FarmError):
    """The farm's state file is missing, corrupt or describes a farm that is still running."""
