"""The per-process run state shared by the locust users: what to send, where rows go, counters.

One `BenchRuntime` is built per load-generator process from a `RunSpec` (written by `bench.run`)
and hung on locust's `Environment`; users take prompts, arrival times and labels from it and hand
back rows. It imports neither locust nor gevent, so it is tested like any other code.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError
from bench.payload import Payload, build_payload
from bench.prompts import Prompt, resolve_prompts
from bench.record import RequestRecord
from bench.settings import BenchSettings
from farm.settings import load, to_argv


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One locust run: a target at a stream count, with the resolved URL and model.

    The settings travel as their argv (`to_argv`); the API key is not written into the file:
    the locust process gets it in its environment (`child_env`), as any child does.
    """

    run_id: str
    target: str
    url: str | None
    model: str
    streams: int
    out_dir: str
    config: BenchSettings

    def to_json(self) -> str:
        """Serialise for the locust subprocess (secrets left out)."""
        return json.dumps(
            {
                "run_id": self.run_id,
                "target": self.target,
                "url": self.url,
                "model": self.model,
                "streams": self.streams,
                "out_dir": self.out_dir,
                "config": to_argv(self.config),
            }
        )

    @classmethod
    def from_json(cls, text: str, environ: Mapping[str, str]) -> RunSpec:
        """Inverse of `to_json`, with the settings' secrets taken from `environ`."""
        try:
            data = json.loads(text)
            config = load(BenchSettings, data.pop("config"), environ).settings
            return cls(config=config, **data)
        except (ValueError, KeyError, TypeError) as exc:
            # A SettingsError is a ValueError too: its one line names the setting.
            raise ConfigError(f"run spec is malformed: {exc}") from exc


class PoissonSchedule:
    """Open-loop arrival times: exponential gaps at `rate_per_s`, seeded, on a monotonic clock."""

    def __init__(self, rate_per_s: float, seed: int, start_ns: int) -> None:
        self._rng = random.Random(seed)
        self._rate = rate_per_s
        self._next_ns = start_ns

    def next_ns(self) -> int:
        """The intended send time of the next request (may already be in the past)."""
        self._next_ns += int(self._rng.expovariate(self._rate) * 1e9)
        return self._next_ns


class BenchRuntime:
    """Per-process state: prompts, payloads, the quota, the row file and live counters."""

    def __init__(
        self, spec: RunSpec, worker_number: int, quota: int | None, rate_share: float
    ) -> None:
        cfg = spec.config
        self.spec = spec
        self.worker_id = f"w{worker_number}"
        self.worker_number = worker_number
        self.prompts: tuple[Prompt, ...] = resolve_prompts(cfg.prompts, cfg.prompt_count, cfg.seed)
        self.payloads: tuple[Payload, ...] = tuple(
            build_payload(
                p, api=cfg.api, model=spec.model, max_tokens=cfg.max_tokens, seed=cfg.seed
            )
            for p in self.prompts
        )
        self.quota = quota
        self.schedule: PoissonSchedule | None = None
        if cfg.rate is not None:
            seed = cfg.seed * 1000 + worker_number
            self.schedule = PoissonSchedule(cfg.rate * rate_share, seed, time.perf_counter_ns())
        self._issued = 0
        self._users = 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self.done = 0
        self.errors = 0
        self.tokens = 0
        out = Path(spec.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.rows_path = out / f"rows-{self.worker_id}.jsonl"
        self.health_path = out / f"health-{self.worker_id}.jsonl"
        self._rows = self.rows_path.open("a", encoding="utf-8", buffering=1)

    def take(self) -> tuple[int, Prompt, Payload] | None:
        """The next request to send (a global index and its prompt) or None when the quota is
        spent. Prompts rotate by a per-process counter so streams don't repeat each other."""
        with self._lock:
            if self.quota is not None and self._issued >= self.quota:
                return None
            index = self._issued
            self._issued += 1
        # Offset each worker so two processes don't send the same prompt at the same moment.
        k = (index + self.worker_number * 7919) % len(self.prompts)
        return index, self.prompts[k], self.payloads[k]

    def next_user_index(self) -> int:
        """A process-unique index for a new user (its stream number within this worker)."""
        with self._lock:
            self._users += 1
            return self._users - 1

    def phase(self, request_index: int) -> str:
        """`warmup` for a stream's first `--warmup` requests, else `measure`."""
        return "warmup" if request_index < self.spec.config.warmup else "measure"

    def record(self, row: RequestRecord) -> None:
        """Append one row (written at once: a crash must not lose finished requests)."""
        self.done += 1
        self.errors += int(row.is_error)
        self.tokens += row.n_chunks
        self._rows.write(row.to_json() + "\n")

    def write_health(self, sample: dict[str, float | int | str]) -> None:
        """Append one per-second harness health sample."""
        with self.health_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(sample) + "\n")

    def close(self) -> None:
        """Flush and close the row file."""
        self._rows.close()
