"""The NKN peer process: the asyncio side of the NKN bench user, speaking JSON lines on stdio.

Locust's gevent world and the relay's asyncio client never share a process: each locust worker
starts one `python -m bench.nkn_peer` and talks to it over pipes. This process owns the NKN
transport and `relay.client.RelayClient`, runs every requested stream concurrently, and stamps
each line with `time.perf_counter_ns()` the moment the client hands it over. On Linux that clock
is CLOCK_MONOTONIC, shared by all processes, so the worker's send stamp and these arrival stamps
subtract exactly.

Protocol (one JSON object per line):
    in   {"op": "stream", "id": str, "path": str, "json": {...}, "timeout_ms": int}
         {"op": "cancel", "id": str}
    out  {"ev": "ready", "address": str} | {"ev": "fatal", "error": str}
         {"id", "ev": "begin", "t_ns", "status"}
         {"id", "ev": "line", "t_ns", "line"}
         {"id", "ev": "end", "t_ns", "ok", "error", "frames", "dm_bytes", "t_ms", "gaps",
          "out_of_order"}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], None]


def _counters(stream: Any) -> dict[str, Any]:
    """Transport counters a relay stream exposes once it has ended (absent ones are None)."""
    names = {"frames": "frames", "dm_bytes": "dm_bytes", "t_ms": "t_ms", "gaps": "gaps"}
    out = {key: getattr(stream, attr, None) for key, attr in names.items()}
    out["out_of_order"] = getattr(stream, "out_of_order", None)
    return out


async def run_stream(client: Any, op: dict[str, Any], emit: Emit) -> None:
    """Run one relayed request and emit begin/line/end events with arrival stamps."""
    rid = str(op["id"])
    request = {
        "service": "ollama",
        "path": op["path"],
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "json": op["json"],
        "timeout_ms": int(op.get("timeout_ms", 300_000)),
        "stream": "chunks",
    }
    error: str | None = None
    ok = False
    stream = client.stream(request, request_id=rid)
    try:
        began = False
        async for line in stream:
            t_ns = time.perf_counter_ns()
            if not began:
                emit(
                    {
                        "id": rid,
                        "ev": "begin",
                        "t_ns": t_ns,
                        "status": getattr(stream, "status", 200),
                    }
                )
                began = True
            emit({"id": rid, "ev": "line", "t_ns": t_ns, "line": line})
        ok = bool(getattr(stream, "ok", True))
        error = getattr(stream, "error", None)
    except asyncio.CancelledError:
        error = "cancelled"
        raise
    except Exception as exc:  # noqa: BLE001 - per-request boundary: report it as this row's error
        error = f"{type(exc).__name__}: {exc}"
    finally:
        end = {"id": rid, "ev": "end", "t_ns": time.perf_counter_ns(), "ok": ok and error is None}
        emit({**end, "error": error, **_counters(stream)})


async def serve(client: Any, emit: Emit) -> None:
    """Read ops from stdin until EOF; one task per stream, cancelled on request or at exit."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: dict[str, asyncio.Task[None]] = {}
    try:
        while line := await reader.readline():
            try:
                op = json.loads(line)
            except ValueError:
                log.warning("ignoring a malformed op line: %r", line[:80])
                continue
            if op.get("op") == "stream":
                task = asyncio.create_task(run_stream(client, op, emit))
                tasks[str(op["id"])] = task
                task.add_done_callback(lambda _t, rid=str(op["id"]): tasks.pop(rid, None))
            elif op.get("op") == "cancel" and str(op.get("id")) in tasks:
                tasks[str(op["id"])].cancel()
    finally:
        for task in tasks.values():
            task.cancel()


async def amain(relay_address: str, rpc_url: str | None) -> int:
    """Connect to NKN, announce readiness, serve until stdin closes."""
    from relay.bridge import NknTransport  # the relay packages are optional until NKN is used
    from relay.client import RelayClient

    def emit(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    transport = NknTransport.for_peer(rpc_server_addr=rpc_url)
    try:
        address = await transport.start()
        client = RelayClient(transport, relay_address)
        emit({"ev": "ready", "address": address})
        async with client:
            await serve(client, emit)
    finally:
        await transport.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.nkn_peer --relay-address A [--rpc-url U]`."""
    parser = argparse.ArgumentParser(prog="python -m bench.nkn_peer")
    parser.add_argument("--relay-address", required=True)
    parser.add_argument("--rpc-url")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        return asyncio.run(amain(args.relay_address, args.rpc_url))
    except Exception as exc:  # noqa: BLE001 - entry point: tell the worker why, then exit
        sys.stdout.write(
            json.dumps({"ev": "fatal", "error": f"{type(exc).__name__}: {exc}"}) + "\n"
        )
        sys.stdout.flush()
        return 1


if __name__ == "__main__":
    sys.exit(main())
