"""The GPU room's settings: setup (`python -m farm.gpu`) and the inventory (`... gpus`).

Setup: only `--check` is a flag. The rest are environment-only: the filesystem root lets the
tests run the whole procedure in a sandbox, and the repository and image let an offline mirror
stand in for NVIDIA's. The inventory has one flag, `--json`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydantic import field_validator

from farm.settings import ServiceSettings, setting

NVIDIA_REPO = "https://nvidia.github.io/libnvidia-container"
DEFAULT_CUDA_IMAGE = "nvidia/cuda:12.8.0-base-ubuntu24.04"


class GpuSetupSettings(ServiceSettings):
    """`python -m farm.gpu [--check]` (`invoke gpu-setup`)."""

    prog = "python -m farm.gpu"
    summary = "Prepare this host's Docker for NVIDIA GPUs (the NVIDIA Container Toolkit)."

    check: bool = setting(False, help="report every item's state; change nothing")
    root: Path = setting(
        Path("/"), help="filesystem root to check and edit", env="FARM_GPU_ROOT", cli=False
    )
    nvidia_repo: str = setting(
        NVIDIA_REPO,
        help="NVIDIA's libnvidia-container apt repository (gpgkey, stable list)",
        env="FARM_NVIDIA_REPO",
        cli=False,
    )
    cuda_image: str = setting(
        DEFAULT_CUDA_IMAGE,
        help="CUDA image run with --gpus all to prove the setup",
        env="FARM_CUDA_IMAGE",
        cli=False,
    )

    @field_validator("root")
    @classmethod
    def _root_is_a_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError("not a directory")
        return value

    @field_validator("nvidia_repo")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


# `--json` is the flag people expect; its field shadows pydantic's deprecated `BaseModel.json()`,
# which nothing here calls, so the warning pydantic gives for the name is silenced for it alone.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class GpusSettings(ServiceSettings):
        """`python -m farm.gpu gpus [--json]` (`invoke gpus`)."""

        prog = "python -m farm.gpu gpus"
        summary = "List this host's NVIDIA GPUs through NVML: memory, MIG, processes, versions."

        json: bool = setting(False, help="print the inventory as JSON (sizes in bytes)")  # type: ignore[assignment]
