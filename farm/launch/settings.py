"""The launcher's settings: one class per verb of `python -m farm` (up, down, status, logs).

`UpSettings` keeps the seed launcher's flags word for word (`--model`, `--num-parallel`,
`--gpu-layers`, `--front-port`, `--back-port`, `--host`, `--mode`, `--models-dir`, `--keepalive`,
`--ctx`, `--no-pull`) and adds the farm's own (`--backend-url`, `--replicas`, `--detach`, ...).
What the launcher reads from its environment is declared here too (`cli=False`), so that
`--print-config` shows every input and a parent can hand all of it to a child.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from farm.common.statedir import FarmStateSettings
from farm.launch.model_name import validate_model_name
from farm.proxy.settings import normalise_backend_url
from farm.settings import setting

Mode = Literal["auto", "docker", "local", "sim", "engine"]
DEFAULT_IMAGE = "ollama/ollama:latest"

# OLLAMA_KEEP_ALIVE accepts a Go duration ("90s", "1h30m", "-1m") or integer seconds.
_DURATION = re.compile(r"-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+|-?\d+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# The addresses the docker SDK takes (npipe:// is Windows-only, and the farm runs on Linux).
_ENGINE_URL = re.compile(r"unix:///\S+|(tcp|ssh|http|https)://[^\s/]+/?")


class DownSettings(FarmStateSettings):
    """`python -m farm down`."""

    prog = "python -m farm down"
    summary = "Stop what `up` started (containers, processes, proxy)."


class StatusSettings(FarmStateSettings):
    """`python -m farm status`."""

    prog = "python -m farm status"
    summary = "Show backends, loaded model, slots, in-flight streams and GPU memory."


class LogsSettings(FarmStateSettings):
    """`python -m farm logs`."""

    prog = "python -m farm logs"
    summary = "Show or follow a backend's log."

    follow: bool = setting(True, flag="--no-follow", help="print and exit instead of following")
    tail: int = setting(100, help="lines of history", ge=0)
    replica: int = setting(1, help="which backend, 1-based", ge=1)


class UpSettings(FarmStateSettings):
    """`python -m farm [up]`: one warm Ollama (or several replicas) fronted by the proxy."""

    prog = "python -m farm up"
    summary = "Start one warm Ollama backend with N parallel slots and the proxy in front."
    env_file_setting = "env_file"

    env_file: Path = setting(
        Path(".env"),
        help="settings file for what no flag or variable sets (`invoke tune --apply` writes it)",
    )
    model: str = setting(help="MODEL[:tag] to pull and keep warm, e.g. gemma3:4b")
    num_parallel: int = setting(
        4, help="parallel slots per backend (sets OLLAMA_NUM_PARALLEL)", env="FARM_NUM_PARALLEL"
    )
    gpu_layers: int = setting(-1, help="layers on the GPU (num_gpu); -1 = as many as fit")
    front_port: int = setting(8080, help="proxy port clients use")
    back_port: int = setting(11434, help="backend port (of the first replica)")
    host: str = setting("0.0.0.0", help="proxy bind address")
    back_host: str = setting("127.0.0.1", help="where the back port is published")
    mode: Mode = setting(
        "auto",
        help="docker, local `ollama serve`, the simulator (sim: synthetic; engine: real weights "
        "on its llama.cpp engine, CPU), or auto (docker, else local)",
    )
    models_dir: Path | None = setting(
        None, help="model cache dir (auto-detected from OLLAMA_MODELS and Ollama's homes)"
    )
    keepalive: str = setting("1h", help="keep the model loaded this long (Go duration or seconds)")
    ctx: int = setting(4096, help="num_ctx for the warm-up and pinned for every request")
    pull: bool = setting(True, flag="--no-pull", help="don't /api/pull the model (assume present)")
    backend_url: tuple[str, ...] = setting(
        (), help="front a running Ollama instead of starting one (repeatable)", metavar="URL"
    )
    replicas: int = setting(1, help="N backends on consecutive back ports (N copies of weights)")
    image: str = setting(DEFAULT_IMAGE, help="Docker image for docker mode")
    name: str = setting("ollama-farm", help="container / process name prefix")
    detach: bool = setting(False, help="leave the farm running; `down` stops it")
    max_queue: int | None = setting(None, help="requests queued per backend (OLLAMA_MAX_QUEUE)")
    flash_attention: bool = setting(False, help="enable flash attention (OLLAMA_FLASH_ATTENTION)")
    cpu: bool = setting(False, help="request no GPU and pin num_gpu 0")
    profile: Path | None = setting(
        None,
        help="--mode sim: the simulator's timing profile (TOML from `invoke calibrate`)",
        metavar="FILE",
    )
    force: bool = setting(
        False,
        help="start even when weights + KV cache would not fit the GPU's free memory "
        "(the fit check then only warns)",
    )
    api_key: str | None = setting(
        None,
        help="key the proxy requires (Bearer; prefer the variable: argv shows in ps)",
        env="FARM_API_KEY",
        secret=True,
        metavar="KEY",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        help="browser origin the proxy allows, e.g. the demo site's ('*' for any; repeatable)",
        metavar="ORIGIN",
    )
    ready_timeout_s: float = setting(
        180.0, help="seconds a backend may take to answer", env="FARM_READY_TIMEOUT", cli=False
    )
    gpus: str = setting(
        "all",
        help="all: one backend sees every GPU; per-gpu: one backend per GPU, pinned by UUID; "
        "or a comma list of GPU indices/UUIDs, one backend each",
        env="FARM_GPUS",
        metavar="all|per-gpu|LIST",
    )
    docker_host: tuple[str, ...] = setting(
        (),
        help="Docker engine to start backends on, unix://, tcp:// or ssh:// (repeatable; "
        "default: the local socket)",
        env="DOCKER_HOST",
        metavar="URL",
    )
    ollama_models: str | None = setting(
        None, help="an existing Ollama models store to use", env="OLLAMA_MODELS", cli=False
    )

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return validate_model_name(value)

    @field_validator("num_parallel")
    @classmethod
    def _num_parallel(cls, value: int) -> int:
        if value < 1:
            raise ValueError("needs at least 1 slot")
        return value

    @field_validator("gpu_layers")
    @classmethod
    def _gpu_layers(cls, value: int) -> int:
        if value < -1:
            raise ValueError("use -1 (all that fit) or >= 0")
        return value

    @field_validator("replicas", "max_queue")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("needs at least 1")
        return value

    @field_validator("ctx")
    @classmethod
    def _ctx(cls, value: int) -> int:
        if value < 1:
            raise ValueError("a context length is at least 1 token")
        return value

    @field_validator("keepalive")
    @classmethod
    def _keepalive(cls, value: str) -> str:
        if not _DURATION.fullmatch(value):
            raise ValueError("use a duration like 5m, 1h, -1 (forever) or integer seconds")
        return value

    @field_validator("ready_timeout_s")
    @classmethod
    def _ready_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("front_port", "back_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("a port is 1-65535")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("use letters, digits, '_', '-', '.'")
        return value

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: str) -> str:
        value = value.strip()
        if value in ("all", "per-gpu"):
            return value
        items = [item.strip() for item in value.split(",")]
        if not all(i.isdigit() or i.startswith(("GPU-", "MIG-")) for i in items):
            raise ValueError("use all, per-gpu, or GPU indices/UUIDs such as 0,1 or GPU-5f3c...")
        if len(set(items)) != len(items):
            raise ValueError("a GPU is named twice")
        return ",".join(items)

    @field_validator("docker_host")
    @classmethod
    def _docker_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not _ENGINE_URL.fullmatch(url):
                raise ValueError(
                    f"{url!r}: expected unix:///path, tcp://host:port or ssh://[user@]host"
                )
        if len(set(value)) != len(value):
            raise ValueError("an engine is given twice")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _fits_together(self) -> UpSettings:
        if self.back_port + self.replicas - 1 > 65535:
            raise ValueError(f"--back-port {self.back_port}: too high for --replicas")
        if self.front_port in self.back_ports and not self.backend_url:
            raise ValueError(f"--front-port {self.front_port}: clashes with a back port")
        if self.gpus != "all" and self.cpu:
            raise ValueError(f"--gpus {self.gpus} asks for GPUs, --cpu for none: drop one")
        if self.gpus != "all" and self.replicas != 1:
            raise ValueError(f"--gpus {self.gpus} starts one backend per GPU; drop --replicas")
        if self.profile is not None and self.mode != "sim":
            raise ValueError("--profile sets the simulator's timing: use it with --mode sim")
        # --docker-host is not refused with other modes: DOCKER_HOST may simply be exported.
        if self.backend_url:
            if self.gpus != "all":
                raise ValueError("--backend-url fronts running servers: drop --gpus")
            if self.mode != "auto":
                raise ValueError(f"--backend-url cannot be combined with --mode {self.mode}")
            if self.replicas != 1:
                raise ValueError("--replicas is for backends the farm starts; repeat --backend-url")
            self._check_backend_urls()
        return self

    def _check_backend_urls(self) -> None:
        # The proxy's own check, so that a URL it would refuse is refused before any start.
        seen: set[str] = set()
        for url in self.backend_url:
            try:
                normal = normalise_backend_url(url)
            except ValueError:
                raise ValueError(f"--backend-url {url!r}: expected http(s)://host:port") from None
            if normal in seen:
                raise ValueError(f"--backend-url {url!r}: given twice")
            seen.add(normal)

    @property
    def back_ports(self) -> tuple[int, ...]:
        """One back port per replica, consecutive from `back_port`."""
        return tuple(range(self.back_port, self.back_port + self.replicas))

    @property
    def pin_num_gpu(self) -> int:
        """The `num_gpu` (layers) every request is pinned to: 0 on `--cpu`."""
        return 0 if self.cpu else self.gpu_layers
