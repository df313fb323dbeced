"""Pure pieces of the proxy: settings validation, body inspection, headers, balancing choice."""

from __future__ import annotations

import json

import pytest

from farm.proxy.__main__ import main
from farm.proxy.errors import stream_error_event
from farm.proxy.headers import downstream_response_headers, upstream_request_headers
from farm.proxy.payload import Pinning, canonical_model, inspect_body
from farm.proxy.pool import BackendPool
from farm.proxy.server import security_warnings
from farm.proxy.settings import ProxySettings
from farm.settings import SettingsError, load
from farm.settings.load import validate


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": ()}, "at least one --backend"),
        ({"backend": ("ftp://x",)}, "--backend 'ftp://x': backend URL must look like http://"),
        ({"backend": ("http://a:1/api",)}, "path"),
        ({"backend": ("http://a:1", "http://a:1/")}, "twice"),
        ({"backend": ("http://a:1",), "header_timeout": 0}, "--header-timeout '0'"),
        ({"backend": ("http://a:1",), "pin_num_ctx": -1}, "--pin-num-ctx '-1'"),
        ({"backend": ("http://a:1",), "api_key": " "}, "--api-key \\*+: must not be blank"),
    ],
    ids=["none", "scheme", "path", "duplicate", "timeout", "pin", "blank-key"],
)
def test_settings_reject_bad_values(values, message):
    with pytest.raises(SettingsError, match=message):
        validate(ProxySettings, values)


def test_settings_read_variables_and_flags_win():
    env = {
        "FARM_API_KEY": "k",
        "FARM_PROXY_BACKENDS": "http://a:1,http://b:2",
        "FARM_PROXY_PORT": "9",
    }
    settings = load(ProxySettings, ["--port", "10"], env).settings
    assert settings.api_key == "k"
    assert settings.backend == ("http://a:1", "http://b:2")
    assert settings.port == 10
    with pytest.raises(SettingsError, match="FARM_PROXY_PORT 'x'"):
        load(ProxySettings, [], {"FARM_PROXY_PORT": "x", "FARM_PROXY_BACKENDS": "http://a:1"})


def test_non_loopback_bind_without_key_warns():
    assert security_warnings(ProxySettings(backend=("http://a:1",))) == []
    open_bind = ProxySettings(backend=("http://a:1",), host="0.0.0.0")
    assert "without an API key" in security_warnings(open_bind)[0]
    keyed = ProxySettings(backend=("http://a:1",), host="0.0.0.0", api_key="k")
    assert security_warnings(keyed) == []


def test_cli_reports_config_errors(capsys):
    assert main(["--backend", "nonsense"]) == 2
    assert "http://host:port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Gemma3", "gemma3:latest"),
        ("gemma3:4b", "gemma3:4b"),
        ("host:5000/ns/m", "host:5000/ns/m:latest"),
    ],
)
def test_canonical_model(name, canonical):
    assert canonical_model(name) == canonical


def test_inspect_body_leaves_bad_json_and_unpinned_bodies_byte_identical():
    pin = Pinning(num_ctx=4096)
    assert inspect_body("/api/generate", b"{nope", pin).body == b"{nope"
    assert inspect_body("/v1/chat/completions", b'{"model": "m"}', pin).body == b'{"model": "m"}'
    raw = b'{"model":"m","options":{"num_ctx":1}}'
    assert inspect_body("/api/chat", raw, pin).body == raw
    pinned = inspect_body("/api/chat", b'{"model":"M"}', pin)
    assert pinned.model == "m:latest"
    assert json.loads(pinned.body)["options"] == {"num_ctx": 4096}


def test_pinning_for_a_named_model_skips_other_models():
    pin = Pinning(num_ctx=4096, model="gemma3:4b")
    assert inspect_body("/api/generate", b'{"model":"other"}', pin).body == b'{"model":"other"}'
    assert b"4096" in inspect_body("/api/generate", b'{"model":"gemma3:4b"}', pin).body


def test_request_headers_drop_hop_by_hop_and_connection_named():
    headers = [
        (b"host", b"x"),
        (b"connection", b"keep-alive, x-trace"),
        (b"x-trace", b"1"),
        (b"te", b"trailers"),
        (b"content-length", b"3"),
        (b"authorization", b"Bearer k"),
        (b"accept", b"*/*"),
    ]
    assert upstream_request_headers(headers, frozenset({b"authorization"})) == [(b"accept", b"*/*")]


def test_response_headers_mark_streams_only():
    stream, is_stream = downstream_response_headers(
        [(b"Content-Type", b"application/x-ndjson"), (b"Transfer-Encoding", b"chunked")]
    )
    assert is_stream
    assert (b"x-accel-buffering", b"no") in stream and (b"cache-control", b"no-cache") in stream
    assert all(name != b"transfer-encoding" for name, _ in stream)
    plain, is_stream = downstream_response_headers([(b"Content-Length", b"2")])
    assert not is_stream and plain == [(b"content-length", b"2")]


def test_sse_error_event_is_openai_shaped():
    event = stream_error_event("gone", sse=True)
    assert event.startswith(b"event: error\ndata: ") and event.endswith(b"\n\n")
    assert json.loads(event.split(b"data: ")[1])["error"]["message"] == "gone"


def test_pick_prefers_loaded_model_then_least_in_flight_and_skips_down():
    pool = BackendPool(["http://a:1", "http://b:1", "http://c:1"])
    a, b, c = pool.backends
    b.loaded = frozenset({"m:latest"})
    assert pool.pick("m:latest") is b
    b.in_flight = 5
    assert pool.pick("m:latest") is b  # loaded beats idle: no reload elsewhere
    assert pool.pick(None) in (a, c)
    pool.mark_down(a, "refused")
    assert pool.pick(None) is c
    assert pool.pick(None, exclude=[a, b, c]) is None
    pool.record_probe(a, "1", [], [], None)
    assert a.up


def test_a_loaded_backend_with_all_slots_busy_loses_its_preference():
    pool = BackendPool(["http://a:1", "http://b:1"], slots=2)
    a, b = pool.backends
    a.loaded = b.stored = frozenset({"m:latest"})
    a.in_flight = 1
    assert pool.pick("m:latest") is a
    a.in_flight = 2
    assert pool.pick("m:latest") is b
