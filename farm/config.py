"""The launcher's typed configuration: `FarmConfig` (for `up`) and `GpuSetupConfig`.

Both are frozen and validated on construction; the environment is read only here, through
`from_env(environ, ...)`. Values that the seed's CLI took as flags arrive as keyword arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from farm.errors import ConfigError

MODES = ("auto", "docker", "local", "sim")
DEFAULT_IMAGE = "ollama/ollama:latest"
DEFAULT_CUDA_IMAGE = "nvidia/cuda:12.8.0-base-ubuntu24.04"
NVIDIA_REPO = "https://nvidia.github.io/libnvidia-container"

# Ollama name parts (types/model/name.go): start with a letter, digit or underscore, then up to
# 79 more of letters, digits, `_`, `-`, `.`. The host part may also carry `:port`.
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,349}(:[0-9]{1,5})?")
# OLLAMA_KEEP_ALIVE accepts a Go duration ("90s", "1h30m", "-1m") or integer seconds.
_DURATION = re.compile(r"-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+|-?\d+")


def validate_model_name(name: str) -> str:
    """Return `name` if Ollama would accept it as `[host/][namespace/]model[:tag]`, else raise."""
    if not name or name != name.strip():
        raise ConfigError(f"--model {name!r}: a model name is required, e.g. gemma3:4b")
    ref = name.split("@", 1)[0]
    parts = ref.split("/")
    last = parts[-1]
    model, sep, tag = last.partition(":")
    if sep and not _PART.fullmatch(tag):
        raise ConfigError(
            f"--model {name!r}: bad tag {tag!r} (a tag is letters, digits, '_', '-', '.'; "
            "e.g. gemma3:4b)"
        )
    if len(parts) > 3 or not _PART.fullmatch(model):
        raise ConfigError(f"--model {name!r}: not a valid Ollama model name (e.g. gemma3:4b)")
    for i, part in enumerate(parts[:-1]):
        pattern = _HOST if i == 0 and len(parts) == 3 else _PART
        if not pattern.fullmatch(part):
            raise ConfigError(f"--model {name!r}: bad name part {part!r}")
    return name


def _port(flag: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{flag} {value}: a port is 1-65535")
    return value


@dataclass(frozen=True, slots=True)
class FarmConfig:
    """Everything `up` needs; built once by `from_env` at the entry point."""

    model: str
    num_parallel: int = 4
    gpu_layers: int = -1
    front_port: int = 8080
    back_port: int = 11434
    host: str = "0.0.0.0"
    back_host: str = "127.0.0.1"
    mode: str = "auto"
    models_dir: Path | None = None
    keepalive: str = "1h"
    ctx: int = 4096
    pull: bool = True
    backend_urls: tuple[str, ...] = ()
    replicas: int = 1
    image: str = DEFAULT_IMAGE
    name: str = "ollama-farm"
    detach: bool = False
    max_queue: int | None = None
    flash_attention: bool = False
    cpu: bool = False
    api_key: str | None = None
    ready_timeout_s: float = 180.0
    ollama_bin: str = "ollama"
    # From the environment (read only in from_env):
    state_dir: Path = Path(".farm")
    docker_host: str | None = None
    ollama_models: str | None = None
    home: Path | None = None
    # The launcher's own environment, inherited by the processes it starts (PATH, HOME, ...).
    base_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        validate_model_name(self.model)
        if self.mode not in MODES:
            raise ConfigError(f"--mode {self.mode!r}: unknown mode (choose {', '.join(MODES)})")
        if self.num_parallel < 1:
            raise ConfigError(f"--num-parallel {self.num_parallel}: needs at least 1 slot")
        if self.gpu_layers < -1:
            raise ConfigError(f"--gpu-layers {self.gpu_layers}: use -1 (all that fit) or >= 0")
        if self.replicas < 1:
            raise ConfigError(f"--replicas {self.replicas}: needs at least 1")
        if self.ctx < 1:
            raise ConfigError(f"--ctx {self.ctx}: a context length is at least 1 token")
        if self.max_queue is not None and self.max_queue < 1:
            raise ConfigError(f"--max-queue {self.max_queue}: needs at least 1")
        if not _DURATION.fullmatch(self.keepalive):
            raise ConfigError(
                f"--keepalive {self.keepalive!r}: use a duration like 5m, 1h, -1 (forever) "
                "or integer seconds"
            )
        if self.ready_timeout_s <= 0:
            raise ConfigError("FARM_READY_TIMEOUT: must be a positive number of seconds")
        _port("--front-port", self.front_port)
        _port("--back-port", self.back_port)
        if self.back_port + self.replicas - 1 > 65535:
            raise ConfigError(f"--back-port {self.back_port}: too high for --replicas")
        if self.front_port in self.back_ports and not self.backend_urls:
            raise ConfigError(f"--front-port {self.front_port}: clashes with a back port")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(f"--name {self.name!r}: use letters, digits, '_', '-', '.'")
        self._check_backend_urls()

    def _check_backend_urls(self) -> None:
        if not self.backend_urls:
            return
        if self.mode != "auto":
            raise ConfigError(f"--backend-url cannot be combined with --mode {self.mode}")
        if self.replicas != 1:
            raise ConfigError("--replicas is for backends the farm starts; repeat --backend-url")
        for url in self.backend_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"--backend-url {url!r}: expected http(s)://host:port")

    @property
    def back_ports(self) -> tuple[int, ...]:
        """One back port per replica, consecutive from `back_port`."""
        return tuple(range(self.back_port, self.back_port + self.replicas))

    @property
    def pin_num_gpu(self) -> int:
        """The `num_gpu` (layers) every request is pinned to: 0 on `--cpu`."""
        return 0 if self.cpu else self.gpu_layers

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **flags: object) -> FarmConfig:
        """Build from CLI flags plus FARM_STATE_DIR, FARM_API_KEY, FARM_READY_TIMEOUT,
        DOCKER_HOST, OLLAMA_MODELS and HOME."""
        env: dict[str, object] = {
            "state_dir": Path(environ.get("FARM_STATE_DIR") or ".farm"),
            "docker_host": environ.get("DOCKER_HOST") or None,
            "ollama_models": environ.get("OLLAMA_MODELS") or None,
            "home": Path(environ["HOME"]) if environ.get("HOME") else None,
            "base_env": {k: v for k, v in environ.items() if not k.startswith("OLLAMA_")},
        }
        if flags.get("api_key") is None and environ.get("FARM_API_KEY"):
            env["api_key"] = environ["FARM_API_KEY"]
        if environ.get("FARM_READY_TIMEOUT"):
            try:
                env["ready_timeout_s"] = float(environ["FARM_READY_TIMEOUT"])
            except ValueError as exc:
                raise ConfigError("FARM_READY_TIMEOUT: must be a number of seconds") from exc
        return cls(**{**env, **{k: v for k, v in flags.items() if v is not None}})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where `down`, `status` and `logs` find a running farm (FARM_STATE_DIR, DOCKER_HOST)."""

    state_dir: Path = Path(".farm")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StateConfig:
        """Read FARM_STATE_DIR (default `.farm` in the current directory)."""
        return cls(state_dir=Path(environ.get("FARM_STATE_DIR") or ".farm"))


@dataclass(frozen=True, slots=True)
class GpuSetupConfig:
    """`gpu-setup`: the filesystem root it edits (a sandbox in tests) and what it verifies."""

    root: Path = Path("/")
    check_only: bool = False
    repo_url: str = NVIDIA_REPO
    cuda_image: str = DEFAULT_CUDA_IMAGE

    @classmethod
    def from_env(cls, environ: Mapping[str, str], check_only: bool = False) -> GpuSetupConfig:
        """Read FARM_GPU_ROOT (default `/`), FARM_NVIDIA_REPO and FARM_CUDA_IMAGE."""
        root = Path(environ.get("FARM_GPU_ROOT") or "/")
        if not root.is_dir():
            raise ConfigError(f"FARM_GPU_ROOT={root}: not a directory")
        return cls(
            root=root,
            check_only=check_only,
            repo_url=(environ.get("FARM_NVIDIA_REPO") or NVIDIA_REPO).rstrip("/"),
            cuda_image=environ.get("FARM_CUDA_IMAGE") or DEFAULT_CUDA_IMAGE,
        )
