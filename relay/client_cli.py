"""The peer client's command line: `python -m relay.client --to ADDR --model M --prompt P`.

Joins NKN with a fresh identity (or `--seed-hex`), streams one generate through the relay and
prints the tokens as they arrive, then a one-line summary (lines, DMs, first line, relay t_ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from relay.bridge import (
    BridgeConfig,
    BridgeError,
    NknTransport,
    default_num_subclients,
    rpc_addrs_from_seed_ws,
)
from relay.client import RelayClient, StreamResult
from relay.errors import ClientTimeout, RemoteError, StreamGapError


async def stream_answer(
    bridge: BridgeConfig, relay: str, service: str, body: dict[str, object], timeout_s: float
) -> StreamResult:
    """Join NKN, stream one generate through `relay`, print tokens as they come."""
    transport = NknTransport(bridge)
    await transport.start()
    try:
        async with RelayClient(transport, relay, timeout_s=timeout_s) as client:
            stream = client.stream(service=service, path="/api/generate", json=body)
            async with stream:
                async for line in stream:
                    chunk = json.loads(line.line)
                    # The CLI's output is the answer itself, token by token.
                    print(chunk.get("response", ""), end="", flush=True)
            return stream.result
    finally:
        await transport.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m relay.client --to ADDR --model M --prompt P`: stream an answer through a relay."""
    parser = argparse.ArgumentParser(prog="python -m relay.client", description=main.__doc__)
    parser.add_argument("--to", required=True, help="the relay's NKN address")
    parser.add_argument("--model", required=True, help="model name, e.g. gemma3:4b")
    parser.add_argument("--prompt", required=True, help="the prompt to send")
    parser.add_argument("--service", default="ollama", help="relay service (default ollama)")
    parser.add_argument("--rpc", default="", help="NKN seed RPC URL(s), CSV (e.g. a local node)")
    parser.add_argument("--seed-hex", default="", help="own NKN seed (default: a fresh one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="total timeout, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rpc = rpc_addrs_from_seed_ws(args.rpc, "--rpc")
        bridge = BridgeConfig(
            seed_hex=args.seed_hex or os.urandom(32).hex(),
            rpc_server_addrs=rpc,
            num_subclients=default_num_subclients(rpc),
        )
    except BridgeError as exc:
        print(f"relay.client: {exc}", file=sys.stderr)
        return 2
    body = {"model": args.model, "prompt": args.prompt, "stream": True}
    try:
        result = asyncio.run(stream_answer(bridge, args.to, args.service, body, args.timeout))
    except (BridgeError, RemoteError, ClientTimeout, StreamGapError) as exc:
        print(f"\nrelay.client: {exc}", file=sys.stderr)
        return 1
    first = result.first_line_s
    end = result.end
    print()
    print(
        f"[{result.lines} lines in {len(result.frames)} DMs, first line after "
        f"{(first or 0) * 1000:.0f} ms, relay t_ms={end.t_ms if end else '?'}]",
        file=sys.stderr,
    )
    return 0
