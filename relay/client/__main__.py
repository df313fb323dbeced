"""`python -m relay.client --to ADDR --model M --prompt P`: stream an answer through a relay.

Joins NKN with a fresh identity (or `--seed-hex`), streams one generate through the relay and
prints the tokens as they arrive, then a one-line summary (lines, frames, fast path or seed API,
first line, relay t_ms) on stderr. The fast path is used when the relay offers it. Settings:
`relay.client.settings.RelayClientSettings`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Mapping, Sequence

from farm.settings import Loaded, process_environ, run_main
from relay.bridge import BridgeConfig, BridgeError, NknTransport
from relay.client.peer import RelayClient
from relay.client.settings import RelayClientSettings
from relay.client.stream import StreamResult
from relay.errors import ClientTimeout, RemoteError, StreamGapError


async def stream_answer(
    bridge: BridgeConfig, relay: str, service: str, body: dict[str, object], timeout_s: float
) -> StreamResult:
    """Join NKN, stream one generate through `relay`, write tokens to stdout as they come."""
    transport = NknTransport(bridge)
    await transport.start()
    try:
        async with RelayClient(transport, relay, timeout_s=timeout_s) as client:
            stream = client.stream(service=service, path="/api/generate", json=body)
            async with stream:
                async for line in stream:
                    chunk = json.loads(line.line)
                    # The CLI's output is the answer itself, token by token.
                    sys.stdout.write(str(chunk.get("response", "")))
                    sys.stdout.flush()
            return stream.result
    finally:
        await transport.close()


def _serve(loaded: Loaded[RelayClientSettings]) -> int:
    settings = loaded.settings
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    prog = RelayClientSettings.prog
    try:
        bridge = settings.bridge_config(secrets.token_hex(32), loaded.environ)
    except BridgeError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    body = {"model": settings.model, "prompt": settings.prompt, "stream": True}
    try:
        result = asyncio.run(
            stream_answer(bridge, settings.to, settings.service, body, settings.timeout)
        )
    except (BridgeError, RemoteError, ClientTimeout, StreamGapError) as exc:
        sys.stderr.write(f"\n{prog}: error: {exc}\n")
        return 1
    end = result.end
    sys.stdout.write("\n")
    sys.stderr.write(
        f"[{result.lines} lines in {len(result.frames)} frames "
        f"({'fast path' if result.fast else 'seed API'}), first line after "
        f"{(result.first_line_s or 0) * 1000:.0f} ms, relay t_ms={end.t_ms if end else '?'}]\n"
    )
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Load the settings and stream one answer; 2 on a bad setting, 1 if the call fails."""
    env = process_environ() if environ is None else environ
    return run_main(RelayClientSettings, _serve, argv, env)


if __name__ == "__main__":
    sys.exit(main())
