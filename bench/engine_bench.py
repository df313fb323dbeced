"""The real engine's batching benchmark: N concurrent streams at NUM_PARALLEL = N, direct and
through the proxy.

Run as `python -m bench.engine_bench` (not a test). For each N it starts the simulator on its
llama.cpp engine (Gemma 3 270M base, CPU) with N slots of `--context` tokens, and the proxy
in front; after a warm-up it fires N streamed `/api/generate` requests at once (distinct
~25-token prompts, `--max-tokens` tokens, temperature 0) for `--rounds` rounds per path, and
prints per N: TTFT p50, per-stream tokens/s (each stream's tokens over its whole time), the
aggregate tokens/s (all tokens over the round's wall time) and the peak RSS of the backend
(simulator + llama.cpp worker). Aggregate above one stream's means the streams were batched.
Every request opens with its own words, so no prompt is served from the prefix cache.
Raw rows and the full config go to `--out` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from pydantic import field_validator

from bench.quantiles import quantile
from bench.settings import stream_counts
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, ServiceSettings, run_main, setting
from farm.sim.child import SimServer

MODEL = "gemma3-270m-base:q4_k_m"
SCHEMA_VERSION = 1
LOAD_TIMEOUT_S = 120.0
# Distinct prompts of about 25 tokens each, one per stream.
PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle on a cold "
    "winter morning by the sea.",
    "Explain in simple words why the sky looks blue during the day and turns red and orange "
    "at sunset over the hills.",
    "Describe a busy market in a small mountain town early on a Saturday morning, with its "
    "sounds, smells and colours.",
    "List the steps a careful baker follows to make a loaf of sourdough bread at home from "
    "flour, water and salt.",
    "Tell the story of a young fox who learns to cross a wide river in spring when the snow "
    "begins to melt away.",
    "Summarise what a train driver does on a long night journey across the plains from one "
    "city to the next one.",
    "Imagine a garden on the roof of a tall building in a big city and describe the plants "
    "that grow there in summer.",
    "Explain how a bicycle stays upright while it moves forward and why it falls over when "
    "it stops moving at all.",
)


class EngineBenchSettings(ServiceSettings):
    """What the engine benchmark runs; written in full beside its summaries (`--out`)."""

    prog = "python -m bench.engine_bench"
    summary = "Real-engine batching: N streams at NUM_PARALLEL=N, direct and through the proxy."

    streams: tuple[int, ...] = setting(
        (1, 2, 4, 8), help="stream counts N (NUM_PARALLEL = N), a comma list", metavar="N,N…"
    )
    rounds: int = setting(3, help="measured rounds per path and N", ge=1)
    max_tokens: int = setting(64, help="num_predict per stream", ge=1)
    context: int = setting(512, help="num_ctx of each sequence", ge=64)
    threads: int = setting(0, help="llama.cpp threads (0: the physical cores)", ge=0)
    out: Path | None = setting(None, help="write rows, summaries and the config as JSON here")

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, value: object) -> object:
        return stream_counts(value)


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One measured stream; times in seconds on the client's monotonic clock."""

    path: str
    streams: int
    round: int
    start_s: float
    first_token_s: float | None
    end_s: float
    eval_count: int
    prompt_eval_count: int
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        """Time to the first piece of text."""
        return None if self.first_token_s is None else self.first_token_s - self.start_s

    @property
    def tokens_per_s(self) -> float | None:
        """This stream's tokens over its whole time (as the reference table measures)."""
        span = self.end_s - self.start_s
        return self.eval_count / span if self.error is None and span > 0 else None


@dataclass(frozen=True, slots=True)
class LevelSummary:
    """One line of the table."""

    path: str
    streams: int
    ttft_p50_ms: float
    per_stream_tok_s: float
    aggregate_tok_s: float
    wall_s: float
    peak_rss_mb: float
    errors: int


def summarise(rows: Sequence[StreamRow], peak_rss_bytes: int) -> LevelSummary:
    """The summary of one path at one N (pure: computed from the rows' timestamps)."""
    good = [row for row in rows if row.error is None]
    rounds: dict[int, list[StreamRow]] = {}
    for row in good:
        rounds.setdefault(row.round, []).append(row)
    walls, aggregates = [], []
    for group in rounds.values():
        wall = max(r.end_s for r in group) - min(r.start_s for r in group)
        walls.append(wall)
        aggregates.append(sum(r.eval_count for r in group) / wall)
    return LevelSummary(
        path=rows[0].path,
        streams=rows[0].streams,
        ttft_p50_ms=quantile((row.ttft_s for row in good), 0.5) * 1000,
        per_stream_tok_s=quantile((row.tokens_per_s for row in good), 0.5),
        aggregate_tok_s=quantile(aggregates, 0.5),
        wall_s=quantile(walls, 0.5),
        peak_rss_mb=peak_rss_bytes / 1e6,
        errors=len(rows) - len(good),
    )


def table(summaries: Sequence[LevelSummary]) -> list[str]:
    """The markdown table, one line per path and N."""
    lines = [
        "| path | N sequences | TTFT p50 | per-stream tok/s | aggregate tok/s | wall | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        errors = f" ({s.errors} errors)" if s.errors else ""
        lines.append(
            f"| {s.path} | {s.streams}{errors} | {s.ttft_p50_ms:.0f} ms | "
            f"{s.per_stream_tok_s:.1f} | {s.aggregate_tok_s:.1f} | {s.wall_s:.2f} s | "
            f"{s.peak_rss_mb:.0f} MB |"
        )
    return lines


async def _stream(
    session: aiohttp.ClientSession, url: str, prompt: str, tokens: int
) -> tuple[float, float | None, float, int, int, str | None]:
    body = {
        "model": MODEL,
        "prompt": prompt,
        "options": {"temperature": 0, "num_predict": tokens},
    }
    start, first, final = time.monotonic(), None, {}
    try:
        async with session.post(url + "/api/generate", json=body) as response:
            response.raise_for_status()
            async for line in response.content:
                chunk = json.loads(line)
                if first is None and chunk.get("response"):
                    first = time.monotonic()
                if chunk.get("done"):
                    final = chunk
    except (aiohttp.ClientError, ValueError) as exc:
        return start, first, time.monotonic(), 0, 0, f"{type(exc).__name__}: {exc}"
    count, prompt_count = final.get("eval_count", 0), final.get("prompt_eval_count", 0)
    return start, first, time.monotonic(), count, prompt_count, None


async def one_round(url: str, path: str, n: int, index: int, tokens: int) -> list[StreamRow]:
    """N concurrent streams; one row each."""
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # A distinct opening per request: no prompt prefix is ever reused from the cache, so
        # every round measures a real prompt evaluation.
        prompts = [f"Request {path} {index}.{i}: {PROMPTS[i % len(PROMPTS)]}" for i in range(n)]
        results = await asyncio.gather(*(_stream(session, url, p, tokens) for p in prompts))
    return [StreamRow(path, n, index, *result) for result in results]


class RssSampler:
    """Peak RSS of a process and its children, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                procs = [self._root, *self._root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                continue

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_level(config: EngineBenchSettings, n: int) -> tuple[list[StreamRow], list[LevelSummary]]:
    """All paths at one N, on a fresh backend with N slots."""
    sim_settings: dict[str, Any] = {"engine": "llamacpp", "num_parallel": n}
    sim_settings.update(context_length=config.context, engine_threads=config.threads)
    rows: list[StreamRow] = []
    summaries = []
    with ExitStack() as stack:
        sim = stack.enter_context(SimServer(**sim_settings))
        sim.wait_for(lambda s: s["engine"]["ready"], timeout=LOAD_TIMEOUT_S)
        proxy = stack.enter_context(ProxyServer([sim.url], access_log=False, num_parallel=n))
        asyncio.run(one_round(sim.url, "warm-up", n, 0, 4))
        for path, url in (("direct", sim.url), ("proxy", proxy.url)):
            level: list[StreamRow] = []
            with RssSampler(sim.pid) as rss:
                for index in range(config.rounds):
                    level += asyncio.run(one_round(url, path, n, index, config.max_tokens))
            rows += level
            summaries.append(summarise(level, rss.peak))
    return rows, summaries


def _bench(loaded: Loaded[EngineBenchSettings]) -> int:
    config = loaded.settings
    rows: list[StreamRow] = []
    summaries: list[LevelSummary] = []
    for n in config.streams:
        level_rows, level = bench_level(config, n)
        rows += level_rows
        summaries += level
        print("\n".join(table(level)[2:] if len(summaries) > 2 else table(level)), flush=True)
    print("\n" + "\n".join(table(sorted(summaries, key=lambda s: (s.path, s.streams)))))
    if config.out is not None:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "config": config.model_dump(mode="json"),
            "summaries": [asdict(s) for s in summaries],
            "rows": [asdict(r) for r in rows],
        }
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps(doc, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return run_main(EngineBenchSettings, _bench, argv)


if __name__ == "__main__":
    sys.exit(main())
