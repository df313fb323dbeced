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
         {"id", "ev": "end", "t_ns", "ok", "error", "status", "frames", "dm_bytes", "t_ms",
          "gaps", "out_of_order", "duplicates"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.child_settings import NknPeerSettings
from farm.settings import Loaded, run_main
from relay.client import RelayClient
from relay.errors import ClientError, StreamGapError
from relay.transport import Transport

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], None]


def out_of_order(arrivals_s: list[float]) -> int:
    """Lines that reached the client in a later frame than a line after them (NKN reordering):
    after reassembly by seq, an arrival time larger than the next line's means it was held."""
    return sum(1 for a, b in zip(arrivals_s, arrivals_s[1:], strict=False) if a > b)


async def run_stream(client: RelayClient, op: dict[str, Any], emit: Emit) -> None:
    """Run one relayed request and emit begin/line/end events with frame arrival stamps."""
    rid = str(op["id"])
    error: str | None = None
    gaps = 0
    arrivals: list[float] = []
    stream = client.stream(
        timeout_s=float(op.get("timeout_ms", 300_000)) / 1000,
        service="ollama",
        path=str(op["path"]),
        method="POST",
        headers={"Content-Type": "application/json"},
        json=op["json"],
    )
    try:
        async with stream:
            async for line in stream:
                if not arrivals:
                    begin = stream.result.begin
                    status = 200 if begin is None else begin.status
                    emit({"id": rid, "ev": "begin", "t_ns": _ns(line.arrival_s), "status": status})
                arrivals.append(line.arrival_s)
                emit({"id": rid, "ev": "line", "t_ns": _ns(line.arrival_s), "line": line.line})
    except StreamGapError as exc:
        gaps = len(exc.missing)
        error = f"lost frames: {exc}"
    except ClientError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        result = stream.result
        end = result.end
        last = result.frames[-1].arrival_s if result.frames else time.perf_counter()
        emit(
            {
                "id": rid,
                "ev": "end",
                "t_ns": _ns(last),
                "ok": error is None and end is not None and end.ok,
                "error": error,
                "status": None if result.begin is None else result.begin.status,
                "frames": len(result.frames),
                "dm_bytes": result.dm_bytes,
                "t_ms": None if end is None else end.t_ms,
                "gaps": gaps,
                "out_of_order": out_of_order(arrivals),
                "duplicates": result.duplicates,
            }
        )


def _ns(perf_s: float) -> int:
    """A `perf_counter()` reading in integer ns (the same clock as `perf_counter_ns()`)."""
    return int(perf_s * 1e9)


def _forget(tasks: dict[str, asyncio.Task[None]], rid: str) -> Callable[[object], None]:
    """A done-callback that drops a finished stream's task from the table."""

    def forget(_task: object) -> None:
        tasks.pop(rid, None)

    return forget


async def serve(client: RelayClient, emit: Emit) -> None:
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
                task.add_done_callback(_forget(tasks, str(op["id"])))
            elif op.get("op") == "cancel" and str(op.get("id")) in tasks:
                tasks[str(op["id"])].cancel()
    finally:
        for task in tasks.values():
            task.cancel()


async def amain(settings: NknPeerSettings, environ: Mapping[str, str]) -> int:
    """Connect, announce readiness, serve until stdin closes.

    With `--loopback URL` the relay engine runs in this process on an in-memory network in
    front of that URL: the relay's own framing and batching cost without the NKN network.
    `environ` is the NKN bridge's (Node's) environment.
    """

    def emit(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    async with contextlib.AsyncExitStack() as stack:
        relay_address = settings.relay_address or ""
        if settings.loopback is not None:
            transport, relay_address = await _loopback(stack, settings.loopback)
        else:
            transport = _nkn_transport(settings.nkn_rpc, environ)
            stack.push_async_callback(transport.close)
            await transport.start()
        client = await stack.enter_async_context(RelayClient(transport, relay_address))
        emit({"ev": "ready", "address": transport.address})
        await serve(client, emit)
    return 0


async def _loopback(stack: contextlib.AsyncExitStack, url: str) -> tuple[Transport, str]:
    """Start a RelayServer for `url` on a MemoryNetwork; return the peer's transport and the
    relay's address."""
    from relay.memory import MemoryNetwork
    from relay.server import RelayServer
    from relay.settings import RelaySettings

    network = MemoryNetwork()
    relay_t, peer_t = network.transport("relay"), network.transport("bench")
    await relay_t.start()
    await peer_t.start()
    config = RelaySettings(targets={"ollama": url}, workers=64, queue=256)
    server = RelayServer(config, relay_t)
    task = asyncio.create_task(server.serve())

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(stop)
    return peer_t, relay_t.address


def _nkn_transport(rpc_url: str | None, environ: Mapping[str, str]) -> Transport:
    """The real NKN transport (relay.bridge) with a fresh throwaway identity for this peer;
    `rpc_url` points the SDK at a seed RPC, e.g. the local test node."""
    from relay.bridge import BridgeConfig, NknTransport, rpc_addrs_from_seed_ws

    rpc = rpc_addrs_from_seed_ws(rpc_url, "--nkn-rpc") if rpc_url else ()
    return NknTransport(
        BridgeConfig(seed_hex=os.urandom(32).hex(), rpc_server_addrs=rpc, environ=environ)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.nkn_peer --relay-address A [--nkn-rpc U]` or `--loopback URL`."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_main(NknPeerSettings, _serve, argv)


def _serve(loaded: Loaded[NknPeerSettings]) -> int:
    try:
        return asyncio.run(amain(loaded.settings, loaded.environ))
    except Exception as exc:  # noqa: BLE001 - entry point: tell the worker why, then exit
        sys.stdout.write(
            json.dumps({"ev": "fatal", "error": f"{type(exc).__name__}: {exc}"}) + "\n"
        )
        sys.stdout.flush()
        return 1


if __name__ == "__main__":
    sys.exit(main())
