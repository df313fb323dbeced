"""Embedding routes: `POST /api/embed` (batch, normalised) and legacy `/api/embeddings`.

The vectors come from the engine (`sim.engine.embed`), inside one slot of the model.
"""

from __future__ import annotations

import time
from typing import Any

from farm.sim.decode import Fields, parse_body
from farm.sim.disconnect import unless_gone
from farm.sim.durations import keep_alive_from_json
from farm.sim.errors import ApiError, BadRequest, ClientGone, NotFound
from farm.sim.exchange import Exchange
from farm.sim.generation import RunMetrics
from farm.sim.options import parse_options
from farm.sim.simulator import Simulator
from farm.sim.store import LocalModel
from farm.sim.vectors import normalised


def _inputs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest("invalid input type")


async def compute(
    sim: Simulator,
    exchange: Exchange,
    model: LocalModel,
    texts: list[str],
    fields: Fields,
    dimensions: int | None,
    truncate: bool,
    start_ns: int,
) -> tuple[list[list[float]], RunMetrics]:
    """Embed texts inside one slot of the engine; normalised vectors (cut to `dimensions`).

    Use `compute_raw` for the legacy un-normalised vectors.
    """
    raw, metrics = await compute_raw(sim, exchange, model, texts, fields, truncate, start_ns)
    return [shaped(vector, dimensions) for vector in raw], metrics


async def compute_raw(
    sim: Simulator,
    exchange: Exchange,
    model: LocalModel,
    texts: list[str],
    fields: Fields,
    truncate: bool,
    start_ns: int,
) -> tuple[list[list[float]], RunMetrics]:
    """The engine's raw vectors; the prompt evaluation time is measured around the engine."""
    metrics = RunMetrics(start_ns=start_ns)
    runner_options, _ = parse_options(fields.obj("options"), sim.config.context_length)
    keep_alive = keep_alive_from_json(fields.data.get("keep_alive"))
    if not texts:
        await sim.load_only(model, runner_options, keep_alive, exchange.gone)
        metrics.loaded_ns = time.perf_counter_ns()
        return [], metrics
    sim.stats.started += 1
    num_ctx = runner_options.num_ctx
    try:
        async with sim.slot(model, runner_options, keep_alive, exchange.gone, metrics) as runner:
            begin = time.perf_counter_ns()
            embedded = await unless_gone(sim.engine.embed(runner, texts), exchange.gone)
            metrics.prompt_eval_ns = time.perf_counter_ns() - begin
        if not truncate and any(count > num_ctx for count in embedded.counts):
            raise BadRequest("the input length exceeds the context length")
        metrics.prompt_eval_count = sum(min(count, num_ctx) for count in embedded.counts)
    except ClientGone:
        sim.stats.cancelled += 1
        raise
    except ApiError:
        sim.stats.failed += 1
        raise
    sim.stats.finished += 1
    return embedded.vectors, metrics


def shaped(vector: list[float], dimensions: int | None) -> list[float]:
    """L2-normalised, then cut to `dimensions` and normalised again when asked."""
    values = normalised(vector)
    if dimensions:
        values = normalised(values[:dimensions])
    return values


async def embed(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/embed`."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "EmbedRequest"), "EmbedRequest")
    sent = fields.string("model")
    truncate = fields.boolean("truncate") is not False
    dimensions = fields.integer("dimensions")
    texts = _inputs(fields.data.get("input"))
    model = sim.find(sent, empty_is_404=True)
    vectors, metrics = await compute(
        sim, exchange, model, texts, fields, dimensions, truncate, start
    )
    body: dict[str, Any] = {"model": sent, "embeddings": vectors}
    final = metrics.final().encode()
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        if key in final:
            body[key] = final[key]
    await exchange.json(200, body)


async def embeddings(sim: Simulator, exchange: Exchange) -> None:
    """`POST /api/embeddings` (legacy): one un-normalised vector."""
    start = exchange.received_ns
    fields = Fields(parse_body(await exchange.body(), "EmbeddingRequest"), "EmbeddingRequest")
    sent, prompt = fields.string("model"), fields.string("prompt")
    try:
        model = sim.find(sent)
    except NotFound as exc:
        raise NotFound(f'model "{sent}" not found, try pulling it first') from exc
    texts = [prompt] if prompt else []
    vectors, _ = await compute_raw(sim, exchange, model, texts, fields, True, start)
    await exchange.json(200, {"embedding": vectors[0] if vectors else []})
