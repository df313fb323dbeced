"""Machine and software facts written beside every result: CPU, GPU, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gpus() -> list[str]:
    """GPU names and memory from `nvidia-smi`, or [] when there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def machine_facts() -> dict[str, Any]:
    """CPU count, platform, Python, GPUs and the versions of the harness's own packages."""
    governor = None
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", encoding="ascii") as fh:
            governor = fh.read().strip()
    except OSError:
        governor = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_governor": governor,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "gpus": gpus(),
        "versions": {
            dist: _version(dist)
            for dist in ("ollama-farm", "locust", "gevent", "geventhttpclient", "pandas", "numpy")
        },
    }
