"""A fake NVML at the library boundary: the real `pynvml` module with its C calls replaced.

Only pynvml's own functions are swapped (`nvmlInit`, `nvmlDeviceGetMemoryInfo`, ...); the
farm's code runs unchanged and sees pynvml's real error classes, raised from NVML error codes
as the bindings raise them. The host is described by a JSON file named by $FAKE_NVML, read at
each `nvmlInit`, so a test can change the host between runs and a child process (through
`sitecustomize.py` in this folder) sees the same one:

    {"error": "LIBRARY_NOT_FOUND"}                   nvmlInit fails with that NVML_ERROR_*
    {"driver": "550.54.15", "cuda": 12040, "gpus": [
      {"name": ..., "uuid": "GPU-...", "total": bytes, "free": bytes,
       "mig": null | 0 | 1,                          null: the GPU has no MIG (NotSupported)
       "mig_devices": [null | {"uuid": "MIG-...", "total": bytes, "free": bytes}],
       "processes": [{"pid": 1, "name": "ollama", "used": bytes | null}]}]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

ENV = "FAKE_NVML"


def _fail(code: str) -> None:
    raise pynvml.NVMLError(getattr(pynvml, f"NVML_ERROR_{code}"))


class _Host:
    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None

    def init(self) -> None:
        self.spec = json.loads(Path(os.environ[ENV]).read_text())
        if "error" in self.spec:
            _fail(self.spec["error"])

    def _need(self) -> dict[str, Any]:
        if self.spec is None:
            _fail("UNINITIALIZED")
        return self.spec  # type: ignore[return-value]

    def handle(self, index: int) -> dict[str, Any]:
        gpus = self._need()["gpus"]
        if not 0 <= index < len(gpus):
            _fail("INVALID_ARGUMENT")
        return {"kind": "gpu", **gpus[index]}

    def memory(self, handle: dict[str, Any]) -> SimpleNamespace:
        total, free = handle["total"], handle["free"]
        return SimpleNamespace(total=total, free=free, used=total - free)

    def mig_mode(self, handle: dict[str, Any]) -> list[int]:
        if handle.get("mig") is None:
            _fail("NOT_SUPPORTED")
        return [handle["mig"], handle["mig"]]

    def max_mig(self, handle: dict[str, Any]) -> int:
        if handle.get("mig") is None:
            _fail("NOT_SUPPORTED")
        return len(handle.get("mig_devices", []))

    def mig_handle(self, handle: dict[str, Any], index: int) -> dict[str, Any]:
        device = handle.get("mig_devices", [])[index]
        if device is None:
            _fail("NOT_FOUND")
        return {"kind": "mig", "name": handle["name"], **device}

    def processes(self, handle: dict[str, Any]) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("used"))
            for p in handle.get("processes", [])
        ]

    def process_name(self, pid: int) -> str:
        for gpu in self._need()["gpus"]:
            for proc in gpu.get("processes", []):
                if proc["pid"] == pid:
                    return proc["name"]
        _fail("NOT_FOUND")
        raise AssertionError


def functions() -> dict[str, Any]:
    """pynvml attribute name -> fake; apply with setattr (or monkeypatch.setattr)."""
    host = _Host()
    return {
        "nvmlInit": host.init,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: host._need()["driver"],
        "nvmlSystemGetCudaDriverVersion": lambda: host._need()["cuda"],
        "nvmlDeviceGetCount": lambda: len(host._need()["gpus"]),
        "nvmlDeviceGetHandleByIndex": host.handle,
        "nvmlDeviceGetName": lambda h: h["name"],
        "nvmlDeviceGetUUID": lambda h: h["uuid"],
        "nvmlDeviceGetMemoryInfo": host.memory,
        "nvmlDeviceGetMigMode": host.mig_mode,
        "nvmlDeviceGetMaxMigDeviceCount": host.max_mig,
        "nvmlDeviceGetMigDeviceHandleByIndex": host.mig_handle,
        "nvmlDeviceGetComputeRunningProcesses": host.processes,
        "nvmlSystemGetProcessName": host.process_name,
    }


def install() -> None:
    """Swap pynvml's functions for good (a child process's `sitecustomize`)."""
    for name, fake in functions().items():
        setattr(pynvml, name, fake)
