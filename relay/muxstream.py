"""One fast-path stream: a session's upstream events turned into items of the peer's `PeerMux`.

The counterpart of `Session._run_stream` for a peer that negotiated `mux/1`: no batcher and no
keepalives of its own (the peer's mux shares one window and one keepalive among its streams).
Lines are numbered from 1 as on the seed path; the upstream is read one chunk further only
after its lines found room in the mux, which is how back-pressure reaches Ollama. The end
summary always follows, also after errors, cancellation and a stopped relay.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from relay.batcher import LineSplitter
from relay.frames import Id
from relay.lineflags import LineFlags
from relay.mux import PeerMux
from relay.muxframes import MuxEnd
from relay.upstream import Cancelled, Chunk, Eof, Fail, Head


@dataclass(slots=True)
class _Tally:
    """What the stream's end summary reports."""

    ok: bool = False
    error: str | None = None
    begun: bool = False
    received_b: int = 0
    last_seq: int = 0
    truncated: bool = False


async def run_mux_stream(
    rid: Id,
    events: asyncio.Queue[Any],
    credit: asyncio.Semaphore,
    stopped: asyncio.Event,
    mux: PeerMux,
    max_line_b: int,
) -> None:
    """Relay one streamed answer through `mux` until its end; `credit` paces the pump."""
    started = time.monotonic()
    splitter = LineSplitter(max_line_b)
    flags = LineFlags()
    tally = _Tally()
    try:
        while True:
            event = await events.get()
            if isinstance(event, Head):
                tally.ok, tally.begun = event.status < 400, True
                mux.begin(rid, tally.ok, event.status, event.headers)
                continue
            if isinstance(event, Chunk):
                tally.received_b += len(event.data)
                lines = splitter.feed(event.data)
            elif isinstance(event, Eof):
                lines = splitter.finish()
            elif isinstance(event, Fail | Cancelled):
                tally.error, tally.ok = event.error, False
                break
            else:
                continue  # a whole Body or a Drained: not for streams on the fast path
            for line in lines:
                if not line.truncated:
                    flags.inspect(line.text)
            if lines:
                if not await mux.lines(rid, tally.last_seq + 1, lines, stopped):
                    continue  # stopped while waiting for room: its Cancelled comes next
                tally.last_seq += len(lines)
                tally.truncated = tally.truncated or any(line.truncated for line in lines)
            if isinstance(event, Eof):
                break
            credit.release()  # queued in the mux: the pump may read one more chunk
    except asyncio.CancelledError:
        tally.error, tally.ok = "relay stopped", False
        raise
    finally:
        mux.end(
            MuxEnd(
                id=rid,
                ok=tally.ok and tally.error is None,
                bytes=tally.received_b,
                last_seq=tally.last_seq,
                lines=tally.last_seq,
                eot_seen=flags.eot_seen,
                done_seen=flags.done_seen,
                truncated=tally.truncated,
                error=tally.error,
                t_ms=int((time.monotonic() - started) * 1000),
                begun=tally.begun,
            )
        )
