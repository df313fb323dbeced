"""The benchmark's settings: `python -m bench`, and its verbs `report` and `demo`.

Each setting is declared once, here; the parser, `--print-config`, the invoke tasks and the
argv a locust process gets (`to_argv`, the API key through `child_env`) come from it. A field
is named after its flag. Values keep the units of their flags (`--duration 2m` is held as 120.0
seconds, `--slo-ttft-ms` in ms); derived values a run needs (the stream counts of a sweep, the
URL each target gets) are properties, so they are never set twice.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from farm.settings import ServiceSettings, setting

Target = Literal["direct", "proxy", "nkn"]
TARGETS: tuple[Target, ...] = ("direct", "proxy", "nkn")
DEFAULT_DURATION_S = 30.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration_s(value: object) -> object:
    """`90`, `60s`, `2m`, `1.5h` or `500ms` as seconds (> 0); other values pass unchanged."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if match is not None:
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        try:  # what `to_argv` writes back: Python's float text, e.g. 1e-05
            seconds = float(value)
        except ValueError:
            raise ValueError("not a duration (e.g. 60s, 2m, 500ms)") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("must be a positive duration")
    return seconds


def _items(value: object) -> list[str] | None:
    """The parts of a repeated or comma-separated option (`--sweep 1,2 --sweep 4`)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return None
    return [part.strip() for item in value for part in str(item).split(",") if part.strip()]


def stream_counts(value: object) -> object:
    """Comma-separated stream counts as a tuple of distinct integers >= 1, order kept."""
    parts = _items(value)
    if parts is None:
        return value
    try:
        counts = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError("expected comma-separated integers") from None
    if any(c < 1 for c in counts):
        raise ValueError("stream counts are integers >= 1")
    if len(set(counts)) != len(counts):
        raise ValueError("a stream count is given twice")
    return counts


def targets(value: object) -> object:
    """`proxy`, `direct`, `nkn`, `all` or a comma list as the ordered targets to run."""
    parts = _items(value)
    if parts is None:
        return value
    expanded = [t for part in parts for t in (TARGETS if part == "all" else (part,))]
    bad = [t for t in expanded if t not in TARGETS]
    if bad or not expanded:
        raise ValueError(f"unknown target {', '.join(bad) or '(none)'}; use proxy|direct|nkn|all")
    if len(set(expanded)) != len(expanded):
        raise ValueError("a target is given twice")
    return tuple(expanded)


class BenchSettings(ServiceSettings):
    """One benchmark run: where to send, what to send, how much load, for how long."""

    prog = "python -m bench"
    summary = "Benchmark the farm with parallel streams (`report DIR…` and `demo` are verbs)."

    target: tuple[Target, ...] = setting(
        ("proxy",), help="proxy|direct|nkn|all, or a comma list", metavar="TARGET"
    )
    url: str | None = setting(
        None, help="URL of the target (the proxy; the backend with --target direct)"
    )
    proxy_url: str = setting(
        "http://127.0.0.1:8080", help="the farm proxy's URL", env="BENCH_PROXY_URL"
    )
    direct_url: str | None = setting(
        None, help="backend URL; unset: the proxy's first backend", env="BENCH_DIRECT_URL"
    )
    relay_address: str | None = setting(
        None, help="NKN address of the relay (--target nkn)", env="BENCH_RELAY_ADDRESS"
    )
    nkn_rpc: str | None = setting(
        None,
        help="NKN seed RPC URL (e.g. the local node's) for the NKN user",
        env="BENCH_NKN_RPC_URL",
        deprecated=("--nkn-rpc-url",),
        metavar="URL",
    )
    nkn_loopback: bool = setting(
        False, help="NKN target without the network: the relay engine in-process before the proxy"
    )
    model: str | None = setting(
        None, help="model name; unset: the farm's model from /_health", env="BENCH_MODEL"
    )
    api: Literal["ollama", "openai"] = setting("ollama", help="native NDJSON or /v1 SSE")
    streams: int = setting(1, help="concurrent streams (closed loop)", ge=1)
    sweep: tuple[int, ...] = setting(
        (), help="comma list of stream counts, one run each (e.g. 1,2,4,9,16)", metavar="N,N…"
    )
    duration: float | None = setting(
        None,
        help=f"run length per run, e.g. 60s (default {DEFAULT_DURATION_S:.0f}s)",
        metavar="TIME",
        allow_inf_nan=False,
    )
    requests: int | None = setting(None, help="stop after N requests per run instead", ge=1)
    warmup: int = setting(1, help="warm-up requests per stream, excluded", ge=0)
    rate: float | None = setting(
        None,
        help="open-loop Poisson arrivals per second (streams cap)",
        gt=0,
        allow_inf_nan=False,
    )
    prompts: str = setting("mixed", help="short|medium|long|mixed or a JSONL file")
    prompt_count: int = setting(64, help="size of a built-in prompt set", ge=1)
    max_tokens: int = setting(128, help="num_predict / max_tokens", ge=1)
    seed: int = setting(1, help="seed for prompts, sampling, arrivals")
    slo_ttft_ms: float | None = setting(None, help="goodput SLO on TTFT", gt=0, allow_inf_nan=False)
    slo_tpot_ms: float | None = setting(None, help="goodput SLO on TPOT", gt=0, allow_inf_nan=False)
    workers: int = setting(0, help="locust worker processes (0: one process)", ge=0)
    timeout: float = setting(
        300.0, help="seconds without data before a timeout", gt=0, allow_inf_nan=False
    )
    out: Path | None = setting(None, help="result folder (default results/<ts>-<target>-<streams>)")
    web: bool = setting(False, help="locust's web UI instead of headless")
    quiet: bool = setting(False, help="no live progress line")
    api_key: str | None = setting(
        None,
        help="the proxy's API key (prefer the variable: argv shows in ps)",
        env="FARM_API_KEY",
        secret=True,
        metavar="KEY",
        repr=False,
    )

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: object) -> object:
        return targets(value)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep(cls, value: object) -> object:
        return stream_counts(value)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return duration_s(value)

    @model_validator(mode="after")
    def _fits_together(self) -> BenchSettings:
        if self.duration is not None and self.requests is not None:
            raise ValueError("give exactly one of --duration and --requests")
        if "nkn" in self.target and self.api != "ollama":
            raise ValueError("--target nkn relays the native Ollama API only; drop --api openai")
        if self.web and (len(self.target) > 1 or len(self.stream_counts) > 1):
            raise ValueError("--web runs one target at one stream count; drop --sweep/all")
        return self

    @property
    def stream_counts(self) -> tuple[int, ...]:
        """The stream counts to run, one run each: the sweep, else `--streams`."""
        return self.sweep or (self.streams,)

    @property
    def duration_s(self) -> float | None:
        """Seconds per run; None when the run is bound by `--requests` instead."""
        if self.duration is None and self.requests is None:
            return DEFAULT_DURATION_S
        return self.duration

    @property
    def proxy_endpoint(self) -> str:
        """The proxy's URL: `--url` unless it names the backend (`--target direct`)."""
        return self.url if self.url and self.target != ("direct",) else self.proxy_url

    @property
    def direct_endpoint(self) -> str | None:
        """The backend's URL, when given (`--url` with `--target direct`, or `--direct-url`)."""
        return self.url if self.url and self.target == ("direct",) else self.direct_url

    def record(self) -> dict[str, Any]:
        """The settings as JSON for meta.json, the API key redacted."""
        data = self.model_dump(mode="json")
        if self.api_key:
            data["api_key"] = "***"
        return data


class ReportSettings(ServiceSettings):
    """`python -m bench report`: re-render one result folder, or compare several."""

    prog = "python -m bench report"
    summary = "Re-render a result folder's report, or compare several side by side."

    dirs: tuple[Path, ...] = setting((), help="result folders", positional=True, metavar="DIR")
    out: Path | None = setting(None, help="where a comparison goes (default results/compare-…)")

    @model_validator(mode="after")
    def _has_a_folder(self) -> ReportSettings:
        if not self.dirs:
            raise ValueError("give at least one result folder (DIR…)")
        return self

    def comparison_out(self) -> Path:
        """Where the comparison of `dirs` goes: `--out`, else results/compare-A-vs-B."""
        name = ("compare-" + "-vs-".join(d.name for d in self.dirs))[:120]
        return self.out or Path("results") / name


class DemoSettings(ServiceSettings):
    """`python -m bench demo`: a whole farm on this machine, benchmarked on every path."""

    prog = "python -m bench demo"
    summary = "Farm + local NKN relay + benchmark of every path, then tear down."

    mode: Literal["engine", "sim", "docker", "local"] = setting(
        "engine",
        help="farm backend: engine (real weights: Gemma 3 270M base on llama.cpp, CPU), "
        "sim (synthetic), docker or local (a real Ollama)",
    )
    model: str = setting(
        "gemma3:4b", help="model to serve (sim/docker/local; engine serves gemma3-270m-base:q4_k_m)"
    )
    streams: int = setting(9, help="concurrent streams per path", ge=1)
    duration: float = setting(
        15.0, help="measuring time per path, e.g. 15s", metavar="TIME", allow_inf_nan=False
    )
    out: Path | None = setting(None, help="result folder")

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return duration_s(value)
