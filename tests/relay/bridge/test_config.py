"""BridgeConfig: seed addresses mapped onto `rpcServerAddr`, and one clear error per bad field."""

from __future__ import annotations

import pytest

from relay.bridge import BridgeConfig, BridgeConfigError, rpc_addrs_from_seed_ws, rpc_server_addr

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


@pytest.mark.parametrize(
    "value", ["ws://127.0.0.1:30002/", "https://node.example:30005/rpc", "http://[::1]:1/?a=b"]
)
def test_normalising_a_normalised_address_changes_nothing(value: str) -> None:
    assert rpc_server_addr(rpc_server_addr(value)) == rpc_server_addr(value)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"seed_hex": "xyz"}, "seed_hex"),
        ({"num_subclients": 17}, "num_subclients"),
        ({"num_subclients": 0}, "num_subclients"),
        ({"identifier": "a b"}, "identifier"),
        ({"queue_limit": 0}, "queue_limit"),
        ({"probe_timeout_s": 0}, "probe_timeout_s"),
    ],
    ids=["bad-seed", "subclients-high", "zero", "ident", "queue", "probe"],
)
def test_invalid_values_name_the_field(fields: dict[str, object], name: str) -> None:
    with pytest.raises(BridgeConfigError, match=f"^{name}: "):
        BridgeConfig(**{"seed_hex": SEED, **fields})  # type: ignore[arg-type]
