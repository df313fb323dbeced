"""BridgeConfig: the seed's .env keys, and NKN_BRIDGE_SEED_WS mapped onto `rpcServerAddr`."""

from __future__ import annotations

import pytest

from relay.bridge import BridgeConfig, BridgeConfigError, rpc_addrs_from_seed_ws

SEED = "ab" * 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("ws://127.0.0.1:30002", ("http://127.0.0.1:30002/",)),
        ("wss://node.example:30005/rpc", ("https://node.example:30005/rpc",)),
        ("http://a:1/x, https://b:2", ("http://a:1/x", "https://b:2/")),
        ("127.0.0.1:30002", ("http://127.0.0.1:30002/",)),
        (" , ws://h:1 ,", ("http://h:1/",)),
    ],
    ids=["empty", "ws", "wss-path", "csv", "bare-host-port", "blank-entries"],
)
def test_seed_ws_entries_become_rpc_server_addrs(value: str, expected: tuple[str, ...]) -> None:
    assert rpc_addrs_from_seed_ws(value) == expected


@pytest.mark.parametrize(
    "value", ["ftp://h:1", "ws://", "udp://x:1"], ids=["ftp", "no-host", "udp"]
)
def test_bad_seed_ws_entry_names_the_key(value: str) -> None:
    with pytest.raises(BridgeConfigError, match="^NKN_BRIDGE_SEED_WS: "):
        rpc_addrs_from_seed_ws(value)


def test_from_env_reads_the_seed_keys() -> None:
    config = BridgeConfig.from_env(
        {
            "NKN_SEED_HEX": SEED,
            "NKN_NUM_SUBCLIENTS": "3",
            "NKN_RPC_SERVER_ADDR": "http://127.0.0.1:9/",
            "NKN_BRIDGE_SEED_WS": "wss://seed.example:30005",
            "NKN_IDENTIFIER": "farm",
        }
    )
    assert config.seed_hex == SEED
    assert config.num_subclients == 3
    assert config.identifier == "farm"
    assert config.rpc_server_addrs == ("http://127.0.0.1:9/", "https://seed.example:30005/")


def test_from_env_defaults_match_the_seed() -> None:
    config = BridgeConfig.from_env({"NKN_SEED_HEX": SEED, "NKN_IDENTIFIER": ""})
    assert config.num_subclients == 2
    assert config.identifier is None
    assert config.rpc_server_addrs == ()


@pytest.mark.parametrize(
    ("seed_ws", "expected"),
    [
        ("ws://127.0.0.1:30002", 1),
        ("http://localhost:30003/,[::1]:30004", 1),
        ("ws://127.0.0.1:30002,wss://seed.example:30005", 2),
        ("", 2),
    ],
    ids=["local-node", "all-loopback", "mixed", "mainnet"],
)
def test_without_num_subclients_a_local_node_gets_one(seed_ws: str, expected: int) -> None:
    # One local node gives extra sub-clients no second path, only a second copy of each DM.
    environ = {"NKN_SEED_HEX": SEED, "NKN_BRIDGE_SEED_WS": seed_ws}
    assert BridgeConfig.from_env(environ).num_subclients == expected
    explicit = BridgeConfig.from_env(environ | {"NKN_NUM_SUBCLIENTS": "2"})
    assert explicit.num_subclients == 2


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({}, "NKN_SEED_HEX"),
        ({"NKN_SEED_HEX": "xyz"}, "NKN_SEED_HEX"),
        ({"NKN_SEED_HEX": SEED, "NKN_NUM_SUBCLIENTS": "two"}, "NKN_NUM_SUBCLIENTS"),
        ({"NKN_SEED_HEX": SEED, "NKN_NUM_SUBCLIENTS": "17"}, "NKN_NUM_SUBCLIENTS"),
        ({"NKN_SEED_HEX": SEED, "NKN_NUM_SUBCLIENTS": "0"}, "NKN_NUM_SUBCLIENTS"),
        ({"NKN_SEED_HEX": SEED, "NKN_IDENTIFIER": "a b"}, "NKN_IDENTIFIER"),
        ({"NKN_SEED_HEX": SEED, "NKN_RPC_SERVER_ADDR": "gopher://x"}, "NKN_RPC_SERVER_ADDR"),
    ],
    ids=["missing-seed", "bad-seed", "subclients-nan", "subclients-high", "zero", "ident", "rpc"],
)
def test_invalid_values_name_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(BridgeConfigError, match=f"^{key}: "):
        BridgeConfig.from_env(environ)
