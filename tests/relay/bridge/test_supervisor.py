"""NknTransport end to end: the real nkn-sdk in bridge.js, on the local NKN test node."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import trustme

from farm.settings import load
from relay.bridge import (
    BridgeConfig,
    BridgeNotInstalledError,
    BridgeStartError,
    NknTransport,
)
from relay.bridge.config import BRIDGE_DIR
from relay.localnode.child import LocalNode
from relay.settings import RelaySettings
from relay.transport import Incoming
from tests.relay.bridge.support import make_config, receive, running

pytestmark = pytest.mark.anyio


async def test_killed_bridge_restarts_with_same_address_and_delivers_queued_dms(
    local_node: LocalNode,
) -> None:
    async with running(make_config(local_node)) as a, running(make_config(local_node)) as b:
        address, pid = a.address, a.bridge_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # Sent while the bridge is down or restarting: these wait in the queue.
        for i in range(5):
            await a.send(b.address, f"queued {i}")
        got = await receive(b, 5, timeout=30)
        assert a.address == address
        assert a.bridge_pid not in (None, pid)
        assert a.restarts >= 1
        await b.send(a.address, "after restart")
        [back] = await receive(a, 1)
    assert sorted(m.payload for m in got) == [f"queued {i}" for i in range(5)]
    assert back == Incoming(b.address, "after restart")


async def test_hung_bridge_is_detected_by_self_probe_and_replaced(local_node: LocalNode) -> None:
    config = make_config(local_node, probe_interval_s=0.3, probe_timeout_s=0.7)
    async with running(config) as a, running(make_config(local_node)) as b:
        pid = a.bridge_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive but silent: only the probe can notice
        try:
            await a.send(b.address, "sent while hung")
            [got] = await receive(b, 1, timeout=30)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert got == Incoming(a.address, "sent while hung")
    assert a.restarts >= 1


async def test_seed_ws_setting_takes_effect_as_rpc_server_addr(
    local_node: LocalNode, tmp_path: Path
) -> None:
    ws_url = f"ws://127.0.0.1:{local_node.port}"
    environ = {"NKN_SEED_HEX": os.urandom(32).hex(), "NKN_BRIDGE_SEED_WS": ws_url}
    settings = load(RelaySettings, ["--env-file", str(tmp_path / "none")], environ).settings
    async with running(settings.bridge_config()) as a:
        address = a.address
        clients = local_node.state()["clients"]
    # The registrations on this node prove the SDK joined through the configured seed.
    assert f"__0__.{address}" in clients


async def test_identifier_and_subclients_shape_the_address(local_node: LocalNode) -> None:
    async with running(make_config(local_node, identifier="farm", num_subclients=3)) as a:
        pubkey = a.address.split(".")[-1]
        assert a.address == f"farm.{pubkey}"
        expected = {f"__{i}__.farm.{pubkey}" for i in range(3)}
        local_node.wait_for(lambda s: expected <= set(s["clients"]))


async def test_start_without_a_reachable_node_fails_clearly() -> None:
    with LocalNode() as node:
        dead_url = node.rpc_url
    config = BridgeConfig(seed_hex=os.urandom(32).hex(), rpc_server_addrs=(dead_url,))
    transport = NknTransport(config)
    with pytest.raises(BridgeStartError, match="did not connect via http://127.0.0.1"):
        await transport.start()
    assert [m async for m in transport.incoming()] == []


async def test_missing_node_modules_names_the_install_command(tmp_path: Path) -> None:
    shutil.copy(BRIDGE_DIR / "bridge.js", tmp_path / "bridge.js")
    config = BridgeConfig(seed_hex=os.urandom(32).hex(), bridge_dir=tmp_path)
    with pytest.raises(BridgeNotInstalledError, match=r"npm ci --prefix relay/bridge"):
        await NknTransport(config).start()


async def test_close_ends_incoming_and_the_bridge_process(local_node: LocalNode) -> None:
    transport = NknTransport(make_config(local_node))
    await transport.start()
    pid = transport.bridge_pid
    assert pid is not None
    await transport.close()
    assert [m async for m in transport.incoming()] == []
    # Exit 0 means bridge.js closed its client and left by itself, not killed after lingering
    # on the SDK's 10 s timers (spec trap 9).
    assert transport.bridge_exit_code == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_tls_local_node_serves_getwssaddr_and_wss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "node.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    # Node's `ws` checks certificates and the SDK passes no TLS options: trust our CA instead.
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(tmp_path / "ca.pem"))
    pem = str(tmp_path / "node.pem")
    with LocalNode(certfile=pem, keyfile=pem) as node:
        assert node.rpc_url.startswith("https://")
        configs = [make_config(node, tls=True) for _ in range(2)]
        async with running(configs[0]) as a, running(configs[1]) as b:
            await a.send(b.address, "over wss")
            [got] = await receive(b, 1)
    assert got == Incoming(a.address, "over wss")


async def test_transport_survives_a_node_restart() -> None:
    with LocalNode() as first:
        port = first.port
        config_a, config_b = make_config(first), make_config(first)
        a, b = NknTransport(config_a), NknTransport(config_b)
        await a.start()
        await b.start()
    try:
        # The node is gone; a new one comes up on the same port (the SDK reconnects by itself,
        # or the self-probe restarts the bridge).
        with LocalNode(port=port) as second:
            second.wait_for(
                lambda s: {f"__0__.{a.address}", f"__0__.{b.address}"} <= set(s["clients"]), 30
            )
            await a.send(b.address, "after node restart")
            [got] = await receive(b, 1, timeout=30)
    finally:
        await a.close()
        await b.close()
    assert got == Incoming(a.address, "after node restart")


async def test_http_proxy_settings_do_not_capture_loopback(
    local_node: LocalNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # axios (inside nkn-sdk) obeys HTTP_PROXY; a dead proxy must not break a local node (trap 7).
    for key in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(key, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with running(make_config(local_node)) as a:
        assert a.address
