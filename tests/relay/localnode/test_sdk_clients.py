"""The unmodified nkn-sdk `Client` and `MultiClient` connect, send, reply and ACK via the node."""

from __future__ import annotations

from typing import Any

import pytest

from relay.localnode.child import LocalNode
from tests.relay.localnode.sdk import run_sdk_clients


@pytest.fixture(scope="module")
def observed(local_node: LocalNode) -> dict[str, Any]:
    return run_sdk_clients(local_node.rpc_url)


def test_all_clients_connect(observed: dict[str, Any]) -> None:
    # Four connect durations mean every onConnect fired (none failed).
    assert len(observed["connectMs"]) == 4


def test_client_reply_resolves_the_senders_promise(observed: dict[str, Any]) -> None:
    assert observed["reply"] == "answer"


def test_client_ack_resolves_with_null(observed: dict[str, Any]) -> None:
    assert observed["ack"] is None
    assert observed["binary"] is None


def test_receiver_sees_true_source_and_payloads(observed: dict[str, Any]) -> None:
    src = observed["addrs"]["a"]
    assert observed["atB"] == [
        {"src": src, "payload": "ask"},
        {"src": src, "payload": "hello"},
        {"src": src, "payload": "0,1,2,255"},
    ]


def test_multiclient_message_arrives_once_and_is_acked(observed: dict[str, Any]) -> None:
    assert observed["atM2"] == [{"src": observed["addrs"]["m1"], "payload": "to multiclient"}]
    assert observed["mcAck"] is None


def test_send_to_offline_address_times_out(observed: dict[str, Any]) -> None:
    assert observed["timeoutError"] == "Message timeout"
