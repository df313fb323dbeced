"""`python -m relay` as users run it, over the local NKN node, when its peer stalls.

The peer's NKN client is frozen (SIGSTOP on its bridge) mid-answer: the local node then
blocks writing to it and stops reading the relay's DMs, as a saturated NKN path would. The
upstream offers 50 MB; the relay process must stay within its backlog cap (plus what it
needs anyway), and the upstream must end up blocked writing. Measured here: about 14 MiB
left the upstream (socket buffers on the way, mostly); the relay's Python process grew by
3-6 MiB, its Node bridge by 20-30 MiB (V8 and libsodium heaps that grow with DM traffic).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest

from relay.bridge import BridgeConfig, NknTransport
from relay.frames import HttpRequest, HttpSpec, decode, encode
from relay.localnode.child import LocalNode
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio
PEER_UNSENT_B = 1_048_576
FLOOD_MB = 50
#: An upstream write that waited this long has a reader that stopped reading.
BLOCKED_S = 1.0


@pytest.fixture(scope="module")
def node() -> Iterator[LocalNode]:
    with LocalNode() as local:
        yield local


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NKN_", "RELAY_"))}
    return {**env, "NO_PROXY": "127.0.0.1,localhost", **extra}


def _rss_b(pid: int) -> tuple[int, int]:
    """RSS of a process, and of it with its children (the relay, and with its Node bridge)."""
    proc = psutil.Process(pid)
    own = proc.memory_info().rss
    return own, own + sum(p.memory_info().rss for p in proc.children(recursive=True))


@asynccontextmanager
async def relay_process(
    node: LocalNode, upstream_url: str, env_file: Path
) -> AsyncIterator[tuple[int, str]]:
    """Run `python -m relay` until the block ends; yields its pid and NKN address."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "--env-file", str(env_file),
        "--peer-unsent-b", str(PEER_UNSENT_B), "--max-dm-b", "262144",
        "--max-body-b", "131072", "--ack-timeout-s", "120",
        env=_env(NKN_RPC_SERVER_ADDR=node.rpc_url,
                 RELAY_TARGETS=json.dumps({"ollama": upstream_url})),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := (await proc.stdout.readline()).decode()).startswith("NKN ready"):
                assert line, "relay exited before it was ready"
        yield proc.pid, line.removeprefix("NKN ready: ").strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_relay_process_stays_bounded_while_a_stalled_peer_is_offered_50_mb(
    node: LocalNode, tmp_path: Path
) -> None:
    peer = NknTransport(
        BridgeConfig(
            seed_hex=os.urandom(32).hex(),
            rpc_server_addrs=(node.rpc_url,),
            ready_timeout_s=20.0,
            probe_interval_s=600.0,  # frozen on purpose: no self-probe restarts
        )
    )
    async with Upstream() as up, relay_process(node, up.url, tmp_path / ".env") as (pid, addr):
        await peer.start()
        frozen: int | None = None
        try:
            own_before_b, tree_before_b = _rss_b(pid)
            spec = HttpSpec(f"/flood?mb={FLOOD_MB}", "GET", service="ollama", stream=True)
            await peer.send(addr, encode(HttpRequest("flood-1", spec)))
            first = await asyncio.wait_for(anext(peer.incoming()), 15)
            assert type(decode(first.payload)).__name__ == "ResponseBegin"
            frozen = peer.bridge_pid
            assert frozen is not None
            os.kill(frozen, signal.SIGSTOP)
            async with asyncio.timeout(60):
                while up.stuck_s() < BLOCKED_S:
                    await asyncio.sleep(0.02)
            own_b, tree_b = _rss_b(pid)
            assert up.flood_b < FLOOD_MB * 1_000_000 // 2
            assert own_b - own_before_b < 16 * 2**20
            assert tree_b - tree_before_b < 80 * 2**20
        finally:
            if frozen is not None:
                os.kill(frozen, signal.SIGCONT)
            await peer.close()
