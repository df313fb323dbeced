"""Progress streams (pull, push, create): NDJSON status objects, or the last one alone.

Once the first object is out the status is 200, so a failure becomes an `{"error": ...}`
line; with `stream:false` the failure is a normal error response (500 unless typed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from farm.sim.errors import ApiError
from farm.sim.exchange import NDJSON_TYPE, Exchange, encode_json


async def stream_or_last(
    exchange: Exchange, stream: bool, events: AsyncIterator[dict[str, Any]]
) -> None:
    """Write progress objects as NDJSON, or only the last one with `stream:false`."""
    if not stream:
        last: dict[str, Any] = {}
        async for event in events:
            last = event
        await exchange.json(200, last)
        return
    await exchange.start(200, NDJSON_TYPE, None)
    try:
        async for event in events:
            await exchange.chunk(encode_json(event) + b"\n")
    except ApiError as exc:
        await exchange.chunk(encode_json({"error": exc.message}) + b"\n")
    await exchange.end()
