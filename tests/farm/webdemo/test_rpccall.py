"""`RpcCall.decode`: the JSON-RPC 2.0 shape nkn-sdk sends passes, rebuilt; anything else is a
400 with the JSON-RPC code naming the fault."""

from __future__ import annotations

import json

import pytest

from farm.webdemo.errors import RpcRefused
from farm.webdemo.rpccall import INVALID_REQUEST, PARSE_ERROR, RpcCall, error_object

SDK_CALL = {"id": "nkn-sdk-js", "jsonrpc": "2.0", "method": "getwsaddr", "params": {"a": 1}}


def test_the_sdks_call_passes_and_only_its_four_fields_travel_on() -> None:
    call = RpcCall.decode(json.dumps({**SDK_CALL, "extra": "x" * 100}).encode())
    assert call == RpcCall("getwsaddr", {"a": 1}, "nkn-sdk-js")
    assert call.encode() == SDK_CALL


BAD = [
    ("not-json", b"{nope", PARSE_ERROR),
    ("not-utf8", b'{"method": "\xff"}', PARSE_ERROR),
    ("nan", b'{"jsonrpc": "2.0", "method": "getwsaddr", "params": [NaN]}', PARSE_ERROR),
    ("deep", b"[" * 100_000 + b"]" * 100_000, PARSE_ERROR),
    ("batch", json.dumps([SDK_CALL]).encode(), INVALID_REQUEST),
    ("method-number", json.dumps({**SDK_CALL, "method": 42}).encode(), INVALID_REQUEST),
    ("method-missing", json.dumps({"jsonrpc": "2.0", "id": 1}).encode(), INVALID_REQUEST),
    ("no-version", json.dumps({**SDK_CALL, "jsonrpc": "1.0"}).encode(), INVALID_REQUEST),
    ("params-string", json.dumps({**SDK_CALL, "params": "x"}).encode(), INVALID_REQUEST),
    ("id-object", json.dumps({**SDK_CALL, "id": {}}).encode(), INVALID_REQUEST),
    ("id-bool", json.dumps({**SDK_CALL, "id": True}).encode(), INVALID_REQUEST),
]


@pytest.mark.parametrize(("body", "code"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_any_other_shape_is_a_400_naming_the_fault(body: bytes, code: int) -> None:
    with pytest.raises(RpcRefused) as caught:
        RpcCall.decode(body)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_a_refusal_echoes_the_callers_id_once_it_is_known() -> None:
    with pytest.raises(RpcRefused) as caught:
        RpcCall.decode(json.dumps({**SDK_CALL, "method": None}).encode())
    doc = error_object(caught.value.code, caught.value.message, caught.value.call_id)
    assert doc == {
        "jsonrpc": "2.0",
        "id": "nkn-sdk-js",
        "error": {"code": INVALID_REQUEST, "message": "method must be a string"},
    }
