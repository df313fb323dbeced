"""Probes: timed streaming requests to an Ollama API, one `Sample` per answer.

A burst sends `concurrency` requests at the same moment and waits for all of them; an
overlap sends one prompt while another answer is decoding; a closed loop keeps `users`
requests in flight until a list of jobs is done. Every sample keeps the client's clock (TTFT,
TPOT, the median gap from chunk arrival times) beside the server's own accounting from the
final chunk (`load_duration`, `prompt_eval_duration`, `eval_duration`) and the server's
`created_at` of every chunk, which times each token free of the prober's own scheduling.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.calibrate.errors import BackendGone
from bench.wire import decode_ndjson
from farm.common.rfc3339 import parse_ns
from farm.sim.tokens import generate_prompt_tokens

NS_PER_S = 1e9
UNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Job:
    """One request to send: a prompt and an answer length."""

    prompt: str
    words: int
    num_predict: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One answer, measured by both clocks (durations in seconds or ns as named)."""

    series: str
    burst: int
    concurrency: int
    prompt_words: int
    num_predict: int
    sent_s: float
    ttft_s: float
    tpot_s: float | None
    total_s: float
    load_duration_ns: int
    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int
    total_duration_ns: int
    #: The median gap between text chunks (client clock): a step without the odd stall.
    gap_p50_s: float | None
    #: The prompt's length by the simulator's counting rule (`farm.sim.tokens`).
    sim_prompt_tokens: int
    #: The server's `created_at` (Unix ns) of each text chunk, then of the final chunk;
    #: empty when a chunk had none the prober could read (not every backend stamps them).
    stamps_ns: tuple[int, ...] = ()

    @property
    def server_start_s(self) -> float:
        """When the server began the request, on the prober's clock: the final chunk's
        arrival less `total_duration` (off by the reply's own transit, alike for a burst)."""
        return self.sent_s + self.total_s - self.total_duration_ns / NS_PER_S

    @property
    def step_s(self) -> float | None:
        """The server's time per decode step (`eval_duration / eval_count`)."""
        if self.eval_count < 1:
            return None
        return self.eval_duration_ns / NS_PER_S / self.eval_count


class Prober:
    """Sends probes to one backend and model over one HTTP client."""

    def __init__(self, http: httpx.AsyncClient, model: str, keep_alive: str = "30m") -> None:
        self._http, self.model, self._keep_alive = http, model, keep_alive
        self._origin = time.perf_counter()
        self._bursts = 0

    async def one(
        self,
        job: Job,
        series: str,
        burst: int,
        concurrency: int,
        first_text: asyncio.Event | None = None,
    ) -> Sample:
        """Stream one answer and time it (`first_text` is set when its first text arrives);
        BackendGone when the backend fails it."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": job.prompt,
            "keep_alive": self._keep_alive,
            "options": {"num_predict": job.num_predict, "temperature": 0, "seed": burst},
        }
        sent = time.perf_counter()
        arrivals: list[float] = []
        stamps: list[int | None] = []
        final = None
        try:
            async with self._http.stream("POST", "/api/generate", json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")[:200]
                    raise BackendGone(f"/api/generate answered {response.status_code}: {text}")
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    chunk = decode_ndjson(line)
                    if chunk.error is not None:
                        raise BackendGone(f"the backend failed a probe: {chunk.error}")
                    if chunk.has_text:
                        arrivals.append(time.perf_counter())
                        stamps.append(parse_ns(chunk.created_at))
                        if first_text is not None:
                            first_text.set()
                    if chunk.done:
                        final = chunk.stats
                        stamps.append(parse_ns(chunk.created_at))
        except httpx.HTTPError as exc:
            raise BackendGone(f"the backend went away mid-probe ({exc})") from exc
        end = time.perf_counter()
        if final is None or not arrivals:
            raise BackendGone("a probe's stream ended without text or a final chunk")
        return Sample(
            series=series,
            burst=burst,
            concurrency=concurrency,
            prompt_words=job.words,
            num_predict=job.num_predict,
            sent_s=sent - self._origin,
            ttft_s=arrivals[0] - sent,
            tpot_s=_tpot(arrivals, final.eval_count),
            total_s=end - sent,
            load_duration_ns=final.load_duration_ns,
            prompt_eval_count=final.prompt_eval_count,
            prompt_eval_duration_ns=final.prompt_eval_duration_ns,
            eval_count=final.eval_count,
            eval_duration_ns=final.eval_duration_ns,
            total_duration_ns=final.total_duration_ns,
            gap_p50_s=float(statistics.median(gaps)) if (gaps := _gaps(arrivals)) else None,
            sim_prompt_tokens=generate_prompt_tokens(job.prompt),
            stamps_ns=_known(stamps),
        )

    async def burst(self, jobs: list[Job], series: str) -> list[Sample]:
        """Send every job at once; their samples once all are done."""
        self._bursts += 1
        burst, count = self._bursts, len(jobs)
        return list(await asyncio.gather(*(self.one(job, series, burst, count) for job in jobs)))

    async def overlap(self, decoder: Job, newcomer: Job) -> list[Sample]:
        """A prompt sent while another answer is decoding: (newcomer, decoder) samples."""
        self._bursts += 1
        burst, decoding = self._bursts, asyncio.Event()
        first = asyncio.create_task(self.one(decoder, "overlap-decoder", burst, 2, decoding))
        try:
            waiter = asyncio.create_task(decoding.wait())
            await asyncio.wait({first, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if first.done():  # it failed, or ended before its first text: say why
                return [first.result()]
            late = await self.one(newcomer, "overlap", burst, 2)
            return [late, await first]
        finally:
            first.cancel()

    async def closed_loop(self, jobs: list[Job], users: int, series: str) -> list[Sample]:
        """`users` clients, each sending the next job as soon as its last answer ended."""
        self._bursts += 1
        burst, queue = self._bursts, list(reversed(jobs))
        samples: list[Sample] = []

        async def user() -> None:
            while queue:
                samples.append(await self.one(queue.pop(), series, burst, users))

        await asyncio.gather(*(user() for _ in range(users)))
        return samples

    async def unload(self) -> None:
        """Ask the backend to unload the model and wait until `/api/ps` no longer lists it."""
        body = {"model": self.model, "keep_alive": 0}
        await _checked(self._http.post("/api/generate", json=body), "/api/generate (unload)")
        deadline = time.monotonic() + UNLOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            ps = await _checked(self._http.get("/api/ps"), "/api/ps")
            names = {m.get("name") for m in ps.json().get("models", [])}
            if self.model not in names:
                return
            await asyncio.sleep(0.05)
        raise BackendGone(f"{self.model} still loaded {UNLOAD_TIMEOUT_S:.0f}s after an unload")


def _gaps(arrivals: list[float]) -> list[float]:
    return [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]


def _known(stamps: list[int | None]) -> tuple[int, ...]:
    """All the stamps, or none: a stream with a gap in them cannot be cut into steps."""
    if any(stamp is None for stamp in stamps):
        return ()
    return tuple(stamp for stamp in stamps if stamp is not None)


def _tpot(arrivals: list[float], eval_count: int) -> float | None:
    if len(arrivals) < 2 or eval_count < 2:
        return None
    return (arrivals[-1] - arrivals[0]) / (eval_count - 1)


async def _checked(call: Any, what: str) -> httpx.Response:
    try:
        response: httpx.Response = await call
    except httpx.HTTPError as exc:
        raise BackendGone(f"{what}: the backend cannot be reached ({exc})") from exc
    if response.status_code != 200:
        raise BackendGone(f"{what} answered {response.status_code}: {response.text[:200]}")
    return response


async def backend_facts(http: httpx.AsyncClient, model: str | None) -> tuple[str, str]:
    """(model, version): the model to measure (the first listed when None) and /api/version."""
    version = (await _checked(http.get("/api/version"), "/api/version")).json().get("version")
    tags = (await _checked(http.get("/api/tags"), "/api/tags")).json().get("models", [])
    names = [m.get("name") for m in tags if m.get("name")]
    if model is None:
        if not names:
            raise BackendGone("the backend lists no models; pull one or give --model")
        model = str(names[0])
    elif model not in names and f"{model}:latest" not in names:
        raise BackendGone(f"model {model!r} is not on the backend (it has: {', '.join(names)})")
    return model, str(version)
