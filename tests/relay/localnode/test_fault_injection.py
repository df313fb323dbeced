"""The local node's `--fault-*` settings, seen by the unmodified nkn-sdk.

`fault_clients.js` sends numbered messages from one `nkn.Client` to another through a node
with faults. Each fault decision is a pure function of the seed (`FaultPlan`), so every test
predicts exactly which messages are hit and checks that the SDK's receiver saw just that.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from relay.bridge import BridgeConfig, NknTransport
from relay.bridge.config import BRIDGE_DIR
from relay.localnode.child import LocalNode
from relay.localnode.faults import Decision, Direction
from relay.localnode.injector import fault_plan
from relay.localnode.settings import LocalNodeSettings

SCRIPT = Path(__file__).with_name("fault_clients.js")


@dataclass(frozen=True)
class Pair:
    """A sender's and a receiver's seeds, and their public keys."""

    sender_seed: str
    receiver_seed: str

    @property
    def sender_key(self) -> str:
        return _pubkey(self.sender_seed)

    @property
    def receiver_key(self) -> str:
        return _pubkey(self.receiver_seed)


def _pubkey(seed_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@pytest.fixture
def pair() -> Pair:
    return Pair(os.urandom(32).hex(), os.urandom(32).hex())


@dataclass(frozen=True)
class Seen:
    """What the receiver got: message numbers in arrival order, and how late each was."""

    order: list[int]
    late_ms: dict[int, list[float]]
    state: dict[str, Any]


def send_through(settings: LocalNodeSettings, pair: Pair, count: int, direction: str) -> Seen:
    """Run the script against a node with `settings`; the node's final state comes along."""
    node_exe = shutil.which("node")
    if node_exe is None:
        pytest.fail("Node.js is required to run nkn-sdk")
    env = {**os.environ, "NODE_PATH": str(BRIDGE_DIR / "node_modules")}
    with LocalNode(settings=settings) as node:
        argv = [node.rpc_url, pair.sender_seed, pair.receiver_seed, str(count), direction]
        done = subprocess.run(
            [node_exe, str(SCRIPT), *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        state = node.state()
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    late: dict[int, list[float]] = {}
    for arrival in result["arrivals"]:
        late.setdefault(arrival["i"], []).append(arrival["late_ms"])
    return Seen([a["i"] for a in result["arrivals"]], late, state)


def predicted(settings: LocalNodeSettings, direction: Direction, count: int) -> list[Decision]:
    """The decisions the node's plan makes for the first `count` messages of `direction`."""
    plan = fault_plan(settings)
    return [plan.decide(direction) for _ in range(count)]


def test_by_default_every_message_arrives_once_in_order(pair: Pair) -> None:
    seen = send_through(LocalNodeSettings(), pair, 60, "other")
    assert seen.order == list(range(60))
    assert seen.state["traffic"]["other"]["messages"] == 60
    faulted = ("dropped", "duplicated", "delayed", "reordered")
    assert all(seen.state["traffic"]["other"][k] == 0 for k in faulted)


@pytest.mark.parametrize(
    ("subject", "direction"), [("receiver", "to"), ("sender", "from")], ids=["to", "from"]
)
def test_drop_hits_exactly_the_seeded_messages(
    pair: Pair, subject: str, direction: Direction
) -> None:
    key = pair.receiver_key if subject == "receiver" else pair.sender_key
    settings = LocalNodeSettings.model_validate(
        {"subject_key": key, "fault_seed": 7, f"fault_{direction}_drop": 0.2}
    )
    decisions = predicted(settings, direction, 200)
    kept = [i for i, d in enumerate(decisions) if not d.drop]
    seen = send_through(settings, pair, 200, direction)
    assert seen.order == kept  # the survivors, in the order they were sent
    dropped = 200 - len(kept)
    assert 20 <= dropped <= 60  # about a fifth
    assert seen.state["traffic"][direction]["dropped"] == dropped


def test_faults_of_the_other_direction_leave_messages_alone(pair: Pair) -> None:
    settings = LocalNodeSettings(
        subject_key=pair.receiver_key, fault_from_drop=1.0, fault_from_duplicate=1.0
    )
    seen = send_through(settings, pair, 40, "to")
    assert seen.order == list(range(40))


def test_duplicated_messages_arrive_twice(pair: Pair) -> None:
    settings = LocalNodeSettings(
        subject_key=pair.receiver_key, fault_seed=3, fault_to_duplicate=0.25
    )
    twice = {i for i, d in enumerate(predicted(settings, "to", 80)) if d.duplicate}
    seen = send_through(settings, pair, 80, "to")
    assert twice, "the seed should duplicate some of 80 messages"
    assert {i: len(v) for i, v in seen.late_ms.items()} == {
        i: 2 if i in twice else 1 for i in range(80)
    }
    assert seen.state["traffic"]["to"]["duplicated"] == len(twice)


def _reordered(decisions: list[Decision]) -> tuple[list[int], int]:
    """The arrival order the node's reorder rule gives (a held message follows the next one),
    and how many messages it holds back."""
    order: list[int] = []
    held: int | None = None
    holds = 0
    for i, decision in enumerate(decisions):
        if decision.reorder and held is None:
            held, holds = i, holds + 1
            continue
        order.append(i)
        if held is not None:
            order.append(held)
            held = None
    return (order if held is None else [*order, held]), holds


def test_reordered_messages_arrive_after_the_next_one(pair: Pair) -> None:
    # A long window: on a loaded machine two sends may be far apart; the last held message
    # then waits the whole window.
    settings = LocalNodeSettings(
        subject_key=pair.receiver_key,
        fault_seed=5,
        fault_to_reorder=0.2,
        fault_reorder_window_ms=5000,
    )
    expected, holds = _reordered(predicted(settings, "to", 80))
    seen = send_through(settings, pair, 80, "to")
    assert expected != list(range(80))
    assert seen.order == expected
    assert seen.state["traffic"]["to"]["reordered"] == holds


def test_delayed_messages_are_late_by_at_least_the_delay(pair: Pair) -> None:
    settings = LocalNodeSettings(
        subject_key=pair.receiver_key, fault_seed=11, fault_to_delay=0.5, fault_delay_ms=300
    )
    delayed = {i for i, d in enumerate(predicted(settings, "to", 40)) if d.delay}
    seen = send_through(settings, pair, 40, "to")
    assert delayed and sorted(seen.order) == list(range(40))
    assert all(seen.late_ms[i][0] >= 300 for i in delayed)
    # Messages not delayed keep their order among themselves.
    assert [i for i in seen.order if i not in delayed] == sorted(set(range(40)) - delayed)
    assert seen.state["traffic"]["to"]["delayed"] == len(delayed)


async def _through_bridges(settings: LocalNodeSettings, pair: Pair, count: int) -> list[str]:
    """Send `count` DMs between two `NknTransport`s (nkn-sdk MultiClients behind the Node
    bridge); what the receiver's transport delivered once the node has delivered all it will."""
    with LocalNode(settings=settings) as node:
        sender, receiver = (
            NknTransport(
                BridgeConfig(seed_hex=seed, rpc_server_addrs=(node.rpc_url,), num_subclients=1)
            )
            for seed in (pair.sender_seed, pair.receiver_seed)
        )
        await asyncio.gather(sender.start(), receiver.start())
        got: list[str] = []

        async def read() -> None:
            async for message in receiver.incoming():
                got.append(message.payload)

        reader = asyncio.create_task(read())
        try:
            for i in range(count):
                await sender.send(receiver.address, str(i))
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline:
                traffic = (await asyncio.to_thread(node.state))["traffic"]["from"]
                if (
                    traffic["messages"] >= count
                    and len(got) >= traffic["messages"] - traffic["dropped"]
                ):
                    break
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()
            await asyncio.gather(sender.close(), receiver.close())
    return got


@pytest.mark.anyio
async def test_a_multiclient_peer_sees_drops_but_never_the_nodes_duplicates(pair: Pair) -> None:
    # The subject is the sender: its own bridge probes go `to` itself, so the `from` stream is
    # exactly its DMs to the receiver, in the order it sent them.
    settings = LocalNodeSettings(
        subject_key=pair.sender_key, fault_seed=2, fault_from_drop=0.2, fault_from_duplicate=0.3
    )
    decisions = predicted(settings, "from", 60)
    got = await _through_bridges(settings, pair, 60)
    assert got == [str(i) for i, d in enumerate(decisions) if not d.drop]
    assert any(d.duplicate for d in decisions)  # duplicated on the wire, deduped by the SDK
