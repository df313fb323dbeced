"""BenchConfig: the one typed configuration of a benchmark run, built once at the edge.

`from_env` reads the few `BENCH_*` / `FARM_API_KEY` variables; the CLI (`bench.cli`) overlays its
flags with `dataclasses.replace`. The config travels to the locust processes as JSON
(`to_json` / `from_json`) and is written in full beside every result.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

TARGETS = ("direct", "proxy", "nkn")
APIS = ("ollama", "openai")
PROMPT_SETS = ("short", "medium", "long", "mixed")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(text: str, name: str = "--duration") -> float:
    """Parse `90`, `60s`, `2m`, `1.5h` or `500ms` into seconds; raise ConfigError naming `name`."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"{name}: cannot read {text!r} as a duration (e.g. 60s, 2m, 500ms)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{name}: must be positive, got {text!r}")
    return seconds


def parse_streams(text: str, name: str = "--sweep") -> tuple[int, ...]:
    """Parse `1,2,4,9` into a tuple of positive stream counts (order kept, duplicates refused)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: expected comma-separated integers, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"{name}: stream counts must be integers >= 1, got {text!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name}: duplicate stream counts in {text!r}")
    return values


def parse_targets(text: str) -> tuple[str, ...]:
    """Parse `proxy`, `direct`, `nkn`, `all` or a comma list into the ordered targets to run."""
    if text.strip() == "all":
        return TARGETS
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in TARGETS]
    if bad or not parts:
        raise ConfigError(f"--target: unknown target {bad or text!r}; use proxy|direct|nkn|all")
    return parts


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Everything that defines a run; two runs with equal configs ask the server the same thing."""

    targets: tuple[str, ...] = ("proxy",)
    streams: tuple[int, ...] = (1,)
    proxy_url: str = "http://127.0.0.1:8080"
    direct_url: str | None = None
    relay_address: str | None = None
    nkn_rpc_url: str | None = None
    nkn_loopback: bool = False
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    api: str = "ollama"
    duration_s: float | None = 30.0
    requests: int | None = None
    warmup: int = 1
    rate_per_s: float | None = None
    prompts: str = "mixed"
    prompt_count: int = 64
    max_tokens: int = 128
    seed: int = 1
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    workers: int = 0
    out: Path | None = None
    web: bool = False
    request_timeout_s: float = 300.0
    progress: bool = True

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        if not self.targets or any(t not in TARGETS for t in self.targets):
            raise ConfigError(f"--target: unknown target in {self.targets}")
        if not self.streams or any(s < 1 for s in self.streams):
            raise ConfigError(f"--streams/--sweep: need counts >= 1, got {self.streams}")
        if self.api not in APIS:
            raise ConfigError(f"--api: use one of {APIS}, got {self.api!r}")
        if (self.duration_s is None) == (self.requests is None):
            raise ConfigError("give exactly one of --duration and --requests")
        if self.requests is not None and self.requests < 1:
            raise ConfigError(f"--requests: must be >= 1, got {self.requests}")
        if self.workers < 0 or self.warmup < 0 or self.max_tokens < 1 or self.prompt_count < 1:
            raise ConfigError("--workers/--warmup >= 0 and --max-tokens/--prompt-count >= 1")
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise ConfigError(f"--rate: must be > 0 requests/s, got {self.rate_per_s}")
        if "nkn" in self.targets and self.api != "ollama":
            raise ConfigError("--target nkn relays the native Ollama API only; drop --api openai")
        if self.web and (len(self.targets) > 1 or len(self.streams) > 1):
            raise ConfigError("--web runs one target at one stream count; drop --sweep/all")
        for name in ("slo_ttft_ms", "slo_tpot_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')}: must be > 0, got {value}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BenchConfig:
        """Defaults overlaid with `BENCH_PROXY_URL`, `BENCH_DIRECT_URL`, `BENCH_RELAY_ADDRESS`,
        `BENCH_NKN_RPC_URL`, `BENCH_MODEL` and the proxy's `FARM_API_KEY`."""
        names = {
            "BENCH_PROXY_URL": "proxy_url",
            "BENCH_DIRECT_URL": "direct_url",
            "BENCH_RELAY_ADDRESS": "relay_address",
            "BENCH_NKN_RPC_URL": "nkn_rpc_url",
            "BENCH_MODEL": "model",
            "FARM_API_KEY": "api_key",
        }
        values = {attr: environ[var] for var, attr in names.items() if environ.get(var)}
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> BenchConfig:
        """A copy with `changes` applied (and validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; the API key is redacted unless `redact` is False."""
        data = dataclasses.asdict(self)
        data["out"] = None if self.out is None else str(self.out)
        if redact and self.api_key:
            data["api_key"] = "***"
        return data

    def to_json(self) -> str:
        """Serialise for a locust subprocess (key included: it stays on this machine)."""
        return json.dumps(self.to_dict(redact=False))

    @classmethod
    def from_json(cls, text: str) -> BenchConfig:
        """Inverse of `to_json`; raise ConfigError on a malformed document."""
        try:
            data = json.loads(text)
            data["targets"] = tuple(data["targets"])
            data["streams"] = tuple(data["streams"])
            data["out"] = None if data.get("out") is None else Path(data["out"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"bench config document is malformed: {exc}") from exc
