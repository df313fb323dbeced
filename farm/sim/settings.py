"""`SimSettings`, the simulator's settings: Ollama's own variables plus the timing model.

The server settings read the variables Ollama reads, in Ollama's formats (`OLLAMA_HOST`,
`OLLAMA_NUM_PARALLEL`, `OLLAMA_MAX_QUEUE`, `OLLAMA_KEEP_ALIVE`, `OLLAMA_MAX_LOADED_MODELS`,
`OLLAMA_CONTEXT_LENGTH`, `OLLAMA_ORIGINS`), so a farm can point the simulator at the same
environment it gives `ollama serve`. The timing model reads `FARM_SIM_*`. Every setting also
has a flag of the same name; a flag beats its variable. The client-facing limits (header and
body sizes and timeouts, connections) are the front door's (`DoorSettings`), as on every
server of the project.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from farm.common.frontdoor import DoorSettings
from farm.settings import setting
from farm.sim.curve import parse_curve
from farm.sim.durations import FOREVER, keep_alive_from_env
from farm.sim.errors import ProfileError
from farm.sim.profile import read_profile

DEFAULT_PORT = 11434
# Ollama's fallback when OLLAMA_MAX_LOADED_MODELS is 0 ("auto"): 3 per GPU, and 3 on a
# machine without one.
AUTO_LOADED_MODELS = 3
_TOKEN_RANGE = re.compile(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _split_ollama_host(value: str) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: `host`, `host:port`, `:port`, `scheme://host[:port]`.

    Without a port, `http://` means 80, `https://` 443 and anything else 11434. One deliberate
    difference: an empty host (`:port`) binds loopback here, not every interface, so that the
    simulator is never reachable from the network unless an address is named.
    """
    text = value.strip()
    default_port = DEFAULT_PORT
    scheme, sep, rest = text.partition("://")
    if sep:
        default_port = {"http": 80, "https": 443}.get(scheme.lower(), DEFAULT_PORT)
        text = rest
    hostport = text.split("/", 1)[0]
    host, port_text = hostport, ""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise ValueError("an IPv6 address needs its closing ']'")
        host, port_text = hostport[1:close], hostport[close + 1 :].removeprefix(":")
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
    if not port_text:
        return host or "127.0.0.1", default_port
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"port {port_text!r} is not 0-65535")
    return host or "127.0.0.1", int(port_text)


def host_from_env(value: str) -> str:
    """The address part of OLLAMA_HOST (see `_split_ollama_host`)."""
    return _split_ollama_host(value)[0]


def port_from_env(value: str) -> int:
    """The port part of OLLAMA_HOST: as given, else the scheme's default, else 11434."""
    return _split_ollama_host(value)[1]


def _count_from_env(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a whole number") from None


def num_parallel_from_env(text: str) -> int:
    """OLLAMA_NUM_PARALLEL: a slot count; 0 means 1, as in Ollama."""
    return _count_from_env(text) or 1


def max_loaded_from_env(text: str) -> int:
    """OLLAMA_MAX_LOADED_MODELS: a runner count; 0 means "auto", which is 3."""
    return _count_from_env(text) or AUTO_LOADED_MODELS


def keep_alive_seconds(value: object) -> object:
    """A keep-alive as seconds: a number, or text that is a number or a Go duration ("5m").

    Negative means forever (`math.inf`), as in Ollama. Other types are left to pydantic.
    """
    if isinstance(value, str):
        return keep_alive_from_env(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isnan(value):
            raise ValueError("not a number of seconds")
        return FOREVER if value < 0 else float(value)
    return value


class SimSettings(DoorSettings):
    """Everything the simulator's behaviour depends on (server settings, engine, timing model).

    Engine: `synthetic` (the default) produces text by the timing model below, with no model;
    `llamacpp` runs real weights (Gemma 3 270M base, Q4_K_M) on llama.cpp, on the CPU, with
    `engine_threads` threads (0: the physical cores), the GGUF assembled once into
    `weights_dir`. Either way the server, its scheduler and `NUM_PARALLEL` slots are the same.

    Timing model: a model load takes `load_ms`; prompt evaluation takes `prefill_base_ms`
    plus `prefill_ms_per_token` per prompt token (plus an exponential extra time of mean
    `prefill_delay_ms` + `prefill_stall` x the evaluation), concurrent evaluations sharing
    one compute as far as `prefill_shared` says, and with the decoding slots as far as
    `prefill_decode_shared` says; each decode step (slowed by prompt evaluations in progress
    as far as `decode_prefill_stall` says) takes
    `decode_ms * (1 + batch_slowdown * (active_slots - 1) ** batch_exponent)` (or follows a
    measured `decode_curve`), each multiplied by a factor drawn uniformly from
    [1 - jitter, 1 + jitter] with a generator seeded by `seed` (`farm.sim.timing`). A
    `profile` (TOML, `farm.sim.profile`) sets these beneath flags and variables. An answer
    ends by itself ("EOS") after a number of tokens drawn from `response_tokens`.
    """

    prog = "python -m farm.sim"
    summary = (
        "Run the Ollama simulator: Ollama's API on a synthetic engine (no model) or on real "
        "weights with llama.cpp (--engine llamacpp)."
    )

    host: str = setting(
        "127.0.0.1", help="address to bind", env="OLLAMA_HOST", from_env=host_from_env
    )
    port: int = setting(
        DEFAULT_PORT,
        help="port to bind (0: any free port)",
        env="OLLAMA_HOST",
        from_env=port_from_env,
        ge=0,
        le=65535,
    )
    num_parallel: int = setting(
        1,
        help="parallel slots per model (the variable's 0 means 1)",
        env="OLLAMA_NUM_PARALLEL",
        from_env=num_parallel_from_env,
        ge=1,
    )
    max_queue: int = setting(512, help="scheduler queue capacity", env="OLLAMA_MAX_QUEUE", ge=0)
    keep_alive: float = setting(
        300.0,
        help="idle time before a model unloads: seconds or a duration such as 5m; negative: never",
        env="OLLAMA_KEEP_ALIVE",
        from_env=keep_alive_from_env,
        metavar="DURATION",
        ge=0,
    )
    max_loaded_models: int = setting(
        AUTO_LOADED_MODELS,
        help="runners resident at once (the variable's 0 means auto: 3)",
        env="OLLAMA_MAX_LOADED_MODELS",
        from_env=max_loaded_from_env,
        ge=1,
    )
    context_length: int = setting(4096, help="default num_ctx", env="OLLAMA_CONTEXT_LENGTH", ge=1)
    origins: tuple[str, ...] = setting(
        (),
        help="extra CORS origin to allow (repeat for more; the variable is a comma list)",
        env="OLLAMA_ORIGINS",
        metavar="ORIGIN",
    )
    engine: Literal["synthetic", "llamacpp"] = setting(
        "synthetic",
        help="what produces the tokens: synthetic (no model) or llamacpp (real weights: "
        "Gemma 3 270M base on llama.cpp, CPU)",
        env="FARM_SIM_ENGINE",
    )
    engine_threads: int = setting(
        0,
        help="llama.cpp engine: CPU threads (0: the physical cores)",
        env="FARM_SIM_ENGINE_THREADS",
        ge=0,
    )
    weights_dir: Path | None = setting(
        None,
        help="llama.cpp engine: where the GGUF is assembled once "
        "(default: ~/.cache/ollama-farm/weights)",
        env="FARM_SIM_WEIGHTS_DIR",
    )
    profile: Path | None = setting(
        None,
        help="timing profile (TOML, from `invoke calibrate`): sets the timing model beneath "
        "flags and variables",
        env="FARM_SIM_PROFILE",
        metavar="FILE",
    )
    load_ms: float = setting(1500.0, help="model load time, ms", env="FARM_SIM_LOAD_MS", ge=0)
    prefill_base_ms: float = setting(
        0.0,
        help="fixed cost of one prompt evaluation, ms",
        env="FARM_SIM_PREFILL_BASE_MS",
        ge=0,
    )
    prefill_delay_ms: float = setting(
        0.0,
        help="mean of an exponentially distributed extra time on every prompt evaluation, ms "
        "(a busy host's stalls, as a calibration measures them)",
        env="FARM_SIM_PREFILL_DELAY_MS",
        ge=0,
    )
    prefill_stall: float = setting(
        0.0,
        help="like --prefill-delay-ms, in proportion: the extra time's mean grows by this "
        "fraction of the evaluation (a compute slowed by other work)",
        env="FARM_SIM_PREFILL_STALL",
        ge=0,
    )
    prefill_shared: float = setting(
        0.0,
        help="how far concurrent prompt evaluations share one compute: 0 independent, "
        "1 k prompts together take k times as long (above 1: contention costs more)",
        env="FARM_SIM_PREFILL_SHARED",
        ge=0,
        le=4,
    )
    prefill_ms_per_token: float = setting(
        0.5,
        help="prompt evaluation time per prompt token, ms",
        env="FARM_SIM_PREFILL_MS_PER_TOKEN",
        ge=0,
    )
    prefill_decode_shared: float = setting(
        0.0,
        help="how far each decoding slot slows a prompt evaluation (they share the batches): "
        "0 not at all, 1 as much as another prompt would with --prefill-shared 1",
        env="FARM_SIM_PREFILL_DECODE_SHARED",
        ge=0,
        le=8,
    )
    decode_prefill_stall: float = setting(
        0.0,
        help="how far each prompt evaluation in progress slows the decoding slots' steps "
        "(a step runs at 1/(1 + S*k) while k prompts are evaluated)",
        env="FARM_SIM_DECODE_PREFILL_STALL",
        ge=0,
        le=50,
    )
    decode_ms: float = setting(
        25.0, help="decode step per token with one active slot, ms", env="FARM_SIM_DECODE_MS", ge=0
    )
    batch_slowdown: float = setting(
        0.15,
        help="a decode step grows by this fraction per extra active slot",
        env="FARM_SIM_BATCH_SLOWDOWN",
        ge=0,
    )
    batch_exponent: float = setting(
        1.0,
        help="a decode step grows with (active_slots - 1) to this power (1: linear)",
        env="FARM_SIM_BATCH_EXPONENT",
        gt=0,
        le=4,
    )
    decode_curve: str = setting(
        "",
        help="measured decode step per active-slot count, SLOTS:MS,... (e.g. 1:22.9,2:43.3); "
        "replaces decode_ms/batch_slowdown/batch_exponent when set",
        env="FARM_SIM_DECODE_CURVE",
        metavar="CURVE",
    )
    jitter: float = setting(
        0.0, help="relative jitter on every duration, 0 <= j < 1", env="FARM_SIM_JITTER", ge=0, lt=1
    )
    seed: int = setting(0, help="seed for jitter and default token text", env="FARM_SIM_SEED")
    fail_after_tokens: int | None = setting(
        None, help="fault: fail every stream with an error line after N tokens", metavar="N", ge=0
    )
    stall_after_tokens: int | None = setting(
        None, help="fault: stop producing tokens after N (until disconnect)", metavar="N", ge=0
    )
    pull_ms: float = setting(
        400.0, help="simulated download time of one pull, ms", env="FARM_SIM_PULL_MS", ge=0
    )
    response_tokens: str = setting(
        "24:96",
        help="answer length when num_predict does not cut it: N or LOW:HIGH",
        env="FARM_SIM_RESPONSE_TOKENS",
        metavar="N|LOW:HIGH",
    )
    empty_store: bool = setting(False, help="start with no models in the store")
    models_dir: Path | None = setting(
        None,
        help="model store directory (default: a fresh temporary directory)",
        env="FARM_SIM_MODELS",
    )
    vram_mib: int | None = setting(
        None,
        help="simulated GPU memory, MiB: logged at start as Ollama logs its GPU, and what a "
        "loaded model needs beyond it shows as on the CPU in /api/ps (unset: unlimited)",
        env="FARM_SIM_VRAM_MIB",
        metavar="MIB",
        ge=1,
    )
    # Text rather than choices: the flag has always accepted any case (`--log-level INFO`).
    log_level: str = setting(
        "warning", help="logging level: " + ", ".join(LOG_LEVELS), metavar="LEVEL"
    )

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive_text(cls, value: object) -> object:
        return keep_alive_seconds(value)

    @model_validator(mode="before")
    @classmethod
    def _profile_beneath(cls, data: object) -> object:
        # Before validation `data` holds only what flags and variables gave, so a profile's
        # value fills exactly the timing settings nobody set.
        if not isinstance(data, dict) or data.get("profile") in (None, ""):
            return data
        try:
            timing = read_profile(Path(str(data["profile"]))).timing
        except ProfileError as exc:
            raise ValueError(f"--profile {exc}") from None
        return {**{k: v for k, v in timing.items() if k not in data}, **data}

    @field_validator("decode_curve")
    @classmethod
    def _curve(cls, value: str) -> str:
        parse_curve(value)
        return value.replace(" ", "")

    @field_validator("response_tokens", mode="before")
    @classmethod
    def _token_range_text(cls, value: object) -> object:
        # Also accept an int (`response_tokens=1000`) or a (low, high) pair from Python callers.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, tuple | list) and len(value) == 2:
            return f"{value[0]}:{value[1]}"
        return value

    @field_validator("response_tokens")
    @classmethod
    def _token_range(cls, value: str) -> str:
        match = _TOKEN_RANGE.fullmatch(value)
        if match is None:
            raise ValueError("expected N or LOW:HIGH, e.g. 24:96")
        low, high = int(match[1]), int(match[2] or match[1])
        if not 1 <= low <= high:
            raise ValueError("needs 1 <= LOW <= HIGH")
        return str(low) if low == high else f"{low}:{high}"

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.lower() not in LOG_LEVELS:
            raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
        return value.lower()

    @property
    def token_range(self) -> tuple[int, int]:
        """`response_tokens` as (low, high), both inclusive."""
        low, _, high = self.response_tokens.partition(":")
        return int(low), int(high or low)
