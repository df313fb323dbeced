"""The simulator's configuration: one frozen dataclass, built from OLLAMA_* variables and flags.

`SimConfig.from_env` reads the variables Ollama reads (`OLLAMA_HOST`, `OLLAMA_NUM_PARALLEL`,
`OLLAMA_MAX_QUEUE`, `OLLAMA_KEEP_ALIVE`, `OLLAMA_MAX_LOADED_MODELS`, `OLLAMA_CONTEXT_LENGTH`,
`OLLAMA_ORIGINS`) plus `FARM_SIM_*` for the timing model; flags then override with
`dataclasses.replace`. This is the only module of the simulator that looks at the environment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from farm.sim.durations import keep_alive_from_env
from farm.sim.errors import ConfigError

DEFAULT_PORT = 11434
OLLAMA_VERSION = "0.33.0"


def parse_ollama_host(value: str) -> tuple[str, int]:
    """Parse OLLAMA_HOST like Ollama: `host`, `host:port`, `:port`, `http(s)://host[:port]`.

    A bare host means port 11434, but a scheme without a port means 80 (http) or 443 (https).
    """
    value = value.strip()
    default_port = DEFAULT_PORT
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        default_port = 443 if scheme == "https" else 80
        parts = urlsplit(value)
        host, port = parts.hostname or "", parts.port
    else:
        parts = urlsplit("//" + value)
        host, port = parts.hostname or "", parts.port
    return (host or "127.0.0.1"), (port if port is not None else default_port)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator's behaviour depends on (server settings + timing model).

    Timing model: a model load takes `load_ms`; prompt evaluation takes
    `prefill_ms_per_token` per prompt token; each decode step takes
    `decode_ms * (1 + batch_slowdown * (active_slots - 1))`, each multiplied by a factor drawn
    uniformly from [1 - jitter, 1 + jitter] with a generator seeded by `seed`. An answer
    ends by itself ("EOS") after a number of tokens drawn from `response_tokens`.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    num_parallel: int = 1
    max_queue: int = 512
    keep_alive_s: float = 300.0
    max_loaded_models: int = 3
    context_length: int = 4096
    origins: tuple[str, ...] = ()
    load_ms: float = 1500.0
    prefill_ms_per_token: float = 0.5
    decode_ms: float = 25.0
    batch_slowdown: float = 0.15
    jitter: float = 0.0
    seed: int = 0
    fail_after_tokens: int | None = None
    stall_after_tokens: int | None = None
    pull_ms: float = 400.0
    response_tokens: tuple[int, int] = (24, 96)
    empty_store: bool = False
    models_dir: str | None = None
    version: str = OLLAMA_VERSION

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("num_parallel", self.num_parallel >= 1),
            ("max_queue", self.max_queue >= 0),
            ("max_loaded_models", self.max_loaded_models >= 1),
            ("context_length", self.context_length >= 1),
            ("port", 0 <= self.port <= 65535),
            ("load_ms", self.load_ms >= 0),
            ("prefill_ms_per_token", self.prefill_ms_per_token >= 0),
            ("decode_ms", self.decode_ms >= 0),
            ("batch_slowdown", self.batch_slowdown >= 0),
            ("jitter", 0 <= self.jitter < 1),
            ("pull_ms", self.pull_ms >= 0),
            ("response_tokens", 1 <= self.response_tokens[0] <= self.response_tokens[1]),
            ("keep_alive_s", self.keep_alive_s >= 0 or math.isinf(self.keep_alive_s)),
            ("fail_after_tokens", self.fail_after_tokens is None or self.fail_after_tokens >= 0),
            ("stall_after_tokens", self.stall_after_tokens is None or self.stall_after_tokens >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"invalid value for {name}: {getattr(self, name)!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimConfig:
        """Build a config from OLLAMA_* (as Ollama reads them) and FARM_SIM_* variables."""
        values: dict[str, object] = {}
        if environ.get("OLLAMA_HOST"):
            values["host"], values["port"] = parse_ollama_host(environ["OLLAMA_HOST"])
        readers: dict[str, tuple[str, Callable[[str], object]]] = {
            "OLLAMA_NUM_PARALLEL": ("num_parallel", int),
            "OLLAMA_MAX_QUEUE": ("max_queue", int),
            "OLLAMA_KEEP_ALIVE": ("keep_alive_s", keep_alive_from_env),
            "OLLAMA_CONTEXT_LENGTH": ("context_length", int),
            "OLLAMA_ORIGINS": ("origins", _split_origins),
            "FARM_SIM_LOAD_MS": ("load_ms", float),
            "FARM_SIM_PREFILL_MS_PER_TOKEN": ("prefill_ms_per_token", float),
            "FARM_SIM_DECODE_MS": ("decode_ms", float),
            "FARM_SIM_BATCH_SLOWDOWN": ("batch_slowdown", float),
            "FARM_SIM_JITTER": ("jitter", float),
            "FARM_SIM_SEED": ("seed", int),
            "FARM_SIM_RESPONSE_TOKENS": ("response_tokens", parse_token_range),
            "FARM_SIM_MODELS": ("models_dir", str),
        }
        for var, (field, parse) in readers.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{var}={raw!r} is invalid: {exc}") from exc
        loaded = environ.get("OLLAMA_MAX_LOADED_MODELS", "").strip()
        if loaded:
            try:
                count = int(loaded)
            except ValueError as exc:
                raise ConfigError(f"OLLAMA_MAX_LOADED_MODELS={loaded!r} is invalid") from exc
            # 0 means "auto": 3 per GPU, and 3 on a CPU-only machine such as this one.
            values["max_loaded_models"] = count if count > 0 else 3
        if values.get("num_parallel") == 0:
            values["num_parallel"] = 1
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The names of all settings (used by the CLI and the test server)."""
        return frozenset(f.name for f in fields(cls))


def parse_token_range(text: str) -> tuple[int, int]:
    """`N` or `LOW:HIGH`: how many tokens an answer has when `num_predict` does not cut it."""
    low, _, high = text.partition(":")
    return int(low), int(high or low)


def _split_origins(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())
