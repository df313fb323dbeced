"""Test-only stand-in for NVIDIA's `pynvml` bindings: GPUs from the FAKE_NVML_GPUS variable.

Put this folder first on PYTHONPATH (or swap it in for the module) and NVML answers as a host
with those GPUs would: a JSON list of {"uuid", "name", "total_mib", "used_mib"}. Only the calls
the farm makes are here; everything else NVML can do is absent on purpose.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

NVML_DEVICE_MIG_ENABLE = 1


class NVMLError(Exception):
    """NVML's base error."""


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - NVML's own spelling
    pass


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
    pass


class NVMLError_NoPermission(NVMLError):  # noqa: N801
    pass


class NVMLError_LibRmVersionMismatch(NVMLError):  # noqa: N801
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    pass


def _gpus() -> list[dict[str, object]]:
    return list(json.loads(os.environ.get("FAKE_NVML_GPUS", "[]")))


def nvmlInit() -> None:  # noqa: N802
    if "FAKE_NVML_GPUS" not in os.environ:
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")


def nvmlShutdown() -> None:  # noqa: N802
    pass


def nvmlSystemGetDriverVersion() -> str:  # noqa: N802
    return "550.54.15"


def nvmlSystemGetCudaDriverVersion() -> int:  # noqa: N802
    return 12040


def nvmlDeviceGetCount() -> int:  # noqa: N802
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index: int) -> int:  # noqa: N802
    return index


def nvmlDeviceGetUUID(handle: int) -> str:  # noqa: N802
    return str(_gpus()[handle]["uuid"])


def nvmlDeviceGetName(handle: int) -> str:  # noqa: N802
    return str(_gpus()[handle]["name"])


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:  # noqa: N802
    gpu = _gpus()[handle]
    total, used = int(gpu["total_mib"]) << 20, int(gpu.get("used_mib", 0)) << 20  # type: ignore[call-overload]
    return SimpleNamespace(total=total, used=used, free=total - used)


def nvmlDeviceGetMigMode(handle: int) -> list[int]:  # noqa: N802
    raise NVMLError_NotSupported("Not Supported")


def nvmlDeviceGetComputeRunningProcesses(handle: int) -> list[object]:  # noqa: N802
    return []
