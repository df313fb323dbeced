"""The GPU inventory of this host, read through NVML (NVIDIA's own `pynvml` bindings).

Never by parsing `nvidia-smi` text: its format changes between drivers. One `read_inventory()`
opens NVML, reads every GPU (index, UUID, name, memory, MIG mode and MIG devices, the processes
holding memory) and the driver and CUDA versions, and closes NVML again. A host without a
working driver gets `NvmlUnavailable`, whose message is one line saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pynvml

from farm.gpu.errors import NoNvidiaDriver, NvmlUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
MigMode = Literal["enabled", "disabled", "n/a"]


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding GPU memory; `used_bytes` is None where NVML cannot say (WDDM, MIG)."""

    pid: int
    name: str
    used_bytes: int | None


@dataclass(frozen=True, slots=True)
class MigDevice:
    """One MIG instance of a GPU: CUDA sees it as a device of its own, named by its UUID."""

    index: int
    uuid: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class Gpu:
    """One physical GPU as NVML reports it."""

    index: int
    uuid: str
    name: str
    total_bytes: int
    free_bytes: int
    used_bytes: int
    mig: MigMode
    mig_devices: tuple[MigDevice, ...]
    processes: tuple[GpuProcess, ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    """Every GPU of the host, with the driver's version and the CUDA version it supports."""

    driver_version: str
    cuda_version: str
    gpus: tuple[Gpu, ...]


def _text(value: object) -> str:
    """NVML strings: str from current bindings, bytes from older ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _unavailable(exc: pynvml.NVMLError) -> NvmlUnavailable:
    """NVML's error at start-up as one line naming the cause and the way forward."""
    what = str(exc)
    if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
        return NoNvidiaDriver(
            "no NVIDIA driver: NVML (libnvidia-ml.so.1) is not installed; install the driver "
            "(sudo ubuntu-drivers install), or run without a GPU (invoke up --cpu or --mode sim)"
        )
    if isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
        return NvmlUnavailable(
            "the NVIDIA driver is installed but not loaded (NVML: Driver Not Loaded): "
            "reboot, or load it with sudo modprobe nvidia"
        )
    if isinstance(exc, pynvml.NVMLError_NoPermission):
        return NvmlUnavailable(
            "NVML refused access (Insufficient Permissions): check the permissions of /dev/nvidia*"
        )
    if isinstance(exc, pynvml.NVMLError_LibRmVersionMismatch):
        return NvmlUnavailable(
            f"the NVIDIA driver's library and kernel module differ ({what}): reboot after a "
            "driver update"
        )
    return NvmlUnavailable(f"NVML cannot read the GPUs ({what}); check the driver with nvidia-smi")


def _optional(call: Callable[[], T], default: T) -> T:
    """A query some GPUs, drivers or containers do not answer (NotSupported, NoPermission)."""
    try:
        return call()
    except pynvml.NVMLError as exc:
        log.debug("NVML query not answered: %s", exc)
        return default


def cuda_version_text(version: int) -> str:
    """NVML's CUDA driver version as CUDA writes it: 12040 -> "12.4"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _process_name(pid: int) -> str:
    """The process's name; "?" when it has gone or is not ours to see (another container)."""
    try:
        return _text(pynvml.nvmlSystemGetProcessName(pid))
    except pynvml.NVMLError:
        return "?"


def _processes(handle: Any) -> tuple[GpuProcess, ...]:
    found: list[Any] = _optional(lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(handle), [])
    out = []
    for proc in found:
        used = proc.usedGpuMemory
        pid = int(proc.pid)
        out.append(GpuProcess(pid, _process_name(pid), None if used is None else int(used)))
    return tuple(out)


def _mig_mode(handle: Any) -> MigMode:
    modes = _optional(lambda: pynvml.nvmlDeviceGetMigMode(handle), None)
    if modes is None:
        return "n/a"
    return "enabled" if modes[0] == pynvml.NVML_DEVICE_MIG_ENABLE else "disabled"


def _mig_handle(handle: Any, slot: int) -> Any:
    """The MIG device in `slot`, or None where the slot is empty (NVML answers NotFound)."""
    try:
        return pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
    except pynvml.NVMLError_NotFound:
        return None


def _mig_devices(handle: Any) -> tuple[MigDevice, ...]:
    """The MIG instances that exist, each with its slot index."""
    slots = int(_optional(lambda: pynvml.nvmlDeviceGetMaxMigDeviceCount(handle), 0))
    out = []
    for slot in range(slots):
        mig = _mig_handle(handle, slot)
        if mig is None:
            continue
        memory = pynvml.nvmlDeviceGetMemoryInfo(mig)
        uuid = _text(pynvml.nvmlDeviceGetUUID(mig))
        out.append(MigDevice(slot, uuid, int(memory.total), int(memory.free)))
    return tuple(out)


def _gpu(index: int) -> Gpu:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    mig = _mig_mode(handle)
    return Gpu(
        index=index,
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        total_bytes=int(memory.total),
        free_bytes=int(memory.free),
        used_bytes=int(memory.used),
        mig=mig,
        mig_devices=_mig_devices(handle) if mig == "enabled" else (),
        processes=_processes(handle),
    )


def read_inventory() -> Inventory:
    """Every GPU of this host; NvmlUnavailable (one line) when NVML cannot start or read."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise _unavailable(exc) from exc
    try:
        return Inventory(
            driver_version=_text(pynvml.nvmlSystemGetDriverVersion()),
            cuda_version=cuda_version_text(int(pynvml.nvmlSystemGetCudaDriverVersion())),
            gpus=tuple(_gpu(i) for i in range(int(pynvml.nvmlDeviceGetCount()))),
        )
    except pynvml.NVMLError as exc:
        raise _unavailable(exc) from exc
    finally:
        _optional(pynvml.nvmlShutdown, None)


def select_gpus(inventory: Inventory, wanted: Sequence[str]) -> tuple[Gpu, ...]:
    """The GPUs named by index ("0") or UUID ("GPU-..."), in the order given; empty: all.

    ValueError names the first one this host does not have."""
    if not wanted:
        return inventory.gpus
    by_key = {str(g.index): g for g in inventory.gpus} | {g.uuid: g for g in inventory.gpus}
    chosen = []
    for key in wanted:
        gpu = by_key.get(key.strip())
        if gpu is None:
            known = ", ".join(f"{g.index} ({g.uuid})" for g in inventory.gpus) or "none"
            raise ValueError(f"no GPU {key!r} on this host; it has: {known}")
        chosen.append(gpu)
    return tuple(chosen)
