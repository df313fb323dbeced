"""The relay server end to end on the memory network, with a real loopback HTTP upstream."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from relay.errors import RemoteError
from tests.relay.harness import config_for, running_relay
from tests.relay.upstream import Upstream

pytestmark = pytest.mark.anyio

# The seed's frames (relay-dm-api.md); `ts` on begin is the contract's documented addition.
BEGIN_FIELDS = {"event", "id", "ok", "status", "headers", "ts"}
LINES_FIELDS = {"event", "id", "lines"}
LINE_FIELDS = {"seq", "ts", "line"}
KEEPALIVE_FIELDS = {"event", "id", "ts"}
END_FIELDS = {
    "event", "id", "ok", "bytes", "last_seq", "lines", "eot_seen", "done_seen", "truncated",
    "error", "t_ms",
}  # fmt: skip
RESPONSE_FIELDS = {
    "event", "id", "ok", "status", "headers", "json", "body_b64", "truncated", "error",
}  # fmt: skip


async def test_streamed_generate_arrives_complete_in_order_with_done_seen() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        async with h.client.stream(path="/stream?n=60", json={"model": "m"}) as s:
            lines = await s.lines()
    assert [line.seq for line in lines] == list(range(1, 62))
    tokens = [json.loads(line.line)["response"] for line in lines[:-1]]
    assert tokens == [f"tok{i} " for i in range(60)]
    end = s.result.end
    assert end is not None and end.ok and end.done_seen and not end.truncated
    assert end.last_seq == end.lines == 61
    assert end.bytes == sum(len(line.line.encode()) + 1 for line in lines)
    # 61 lines at 24 per batch: batching must have packed them into a few DMs.
    assert 3 <= sum(1 for f in s.result.frames if f.kind == "lines") < 61


async def test_stream_frames_carry_exactly_the_seed_fields() -> None:
    async with Upstream() as up:
        config = config_for(up.url, keepalive_s=0.05)
        async with running_relay(config) as h:
            async with h.client.stream(path="/stream?n=3&delay=0.15", json={}) as s:
                await s.lines()
            frames = h.frames_to_peer()
    kinds = {f["event"] for f in frames}
    assert kinds == {
        "relay.response.begin",
        "relay.response.lines",
        "relay.response.keepalive",
        "relay.response.end",
    }
    expected = {
        "relay.response.begin": BEGIN_FIELDS,
        "relay.response.lines": LINES_FIELDS,
        "relay.response.keepalive": KEEPALIVE_FIELDS,
        "relay.response.end": END_FIELDS,
    }
    for frame in frames:
        assert set(frame) == expected[frame["event"]], frame
        for entry in frame["lines"] if frame["event"] == "relay.response.lines" else []:
            assert set(entry) == LINE_FIELDS
    begin = next(f for f in frames if f["event"] == "relay.response.begin")
    assert begin["status"] == 200 and begin["headers"]["content-type"] == "application/x-ndjson"
    assert "content-length" not in begin["headers"]


async def test_non_stream_json_response() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        response = await h.client.request(path="/echo", json={"model": "m", "prompt": "hi"})
        frames = h.frames_to_peer()
    assert response.ok and response.status == 200 and response.body_b64 is None
    assert response.json["method"] == "POST"
    assert json.loads(response.json["body"]) == {"model": "m", "prompt": "hi"}
    assert set(frames[-1]) == RESPONSE_FIELDS


def _binary(request: httpx.Request) -> httpx.Response:
    size = int(request.url.params.get("size", "256"))
    body = bytes(range(256)) * (size // 256)
    return httpx.Response(200, content=body, headers={"content-type": "application/octet-stream"})


async def test_non_stream_binary_body_arrives_as_base64() -> None:
    async with running_relay(handler=_binary) as h:
        response = await h.client.request(path="/blob?size=1024")
    assert response.json is None and not response.truncated
    assert base64.b64decode(response.body_b64 or "") == bytes(range(256)) * 4


async def test_non_stream_body_over_the_cap_is_cut_and_flagged() -> None:
    config = config_for("http://upstream", max_body_b=1000)
    async with running_relay(config, handler=_binary) as h:
        response = await h.client.request(path="/blob?size=4096")
    assert response.truncated
    assert base64.b64decode(response.body_b64 or "") == (bytes(range(256)) * 4)[:1000]


async def test_long_line_is_cut_at_the_cap_and_reported_truncated() -> None:
    long = json.dumps({"response": "é" * 5000, "done": False})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=f'{long}\n{{"done":true}}\n'.encode())

    config = config_for("http://upstream", max_line_b=1001)
    async with running_relay(config, handler=handler) as h:
        async with h.client.stream(path="/api/generate", json={}) as s:
            lines = await s.lines()
    assert lines[0].truncated and len(lines[0].line.encode()) <= 1001
    assert long.startswith(lines[0].line)
    assert s.result.end is not None and s.result.end.truncated and s.result.end.done_seen


async def test_ping_pong_and_info() -> None:
    async with running_relay(config_for("http://upstream", workers=3)) as h:
        await h.send_raw('{"event":"relay.ping"}')  # the seed's ping has no id
        await h.peer.send(h.relay.address, "")  # and a malformed one in between
        pong, rtt_s = await h.client.ping()  # answered after the two above: DMs are in order
        info = await h.client.info()
        pongs = [f for f in h.frames_to_peer() if f["event"] == "relay.pong"]
    assert pong.addr == h.relay.address and pong.ts > 0 and rtt_s >= 0
    assert info.services == ("ollama",) and info.workers == 3
    assert info.verify_default is True and info.max_body_b == 2_097_152
    assert [set(p) for p in pongs] == [{"event", "ts", "addr"}, {"event", "ts", "addr", "id"}]


async def test_cancel_closes_upstream_and_ends_stream_cancelled() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        async with h.client.stream(path="/hang", json={}) as s:
            async for line in s:
                assert line.seq == 1
                break
        await up.wait_for(lambda u: u.disconnects == 1 and u.active == 0)
        await _wait_frame(h, "relay.response.end")
        end = [f for f in h.frames_to_peer() if f["event"] == "relay.response.end"][-1]
    assert end["ok"] is False and end["error"] == "cancelled"
    assert h.server.in_flight == 0


async def _wait_frame(h, event: str) -> None:
    import asyncio

    for _ in range(500):
        if any(f["event"] == event for f in h.frames_to_peer()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {event} frame")


@pytest.mark.parametrize(
    ("req", "error"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url not allowed"),
        ({"service": "nope", "path": "/"}, "unknown service 'nope'"),
        ({"service": "ollama", "path": "/../etc/passwd"}, "bad request: path may not"),
        ({"service": "ollama", "path": "/api/%2e%2e/%2e%2e/x"}, "bad request: path may not"),
        ({"service": "ollama", "path": "http://10.0.0.1/admin"}, "bad request: path must be"),
        ({"service": "ollama", "path": "//10.0.0.1/admin"}, "bad request: path must be"),
    ],
    ids=["raw-url", "unknown-service", "dotdot", "encoded-dotdot", "full-url", "scheme-relative"],
)
async def test_refused_requests_never_reach_upstream(req: dict[str, str], error: str) -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        with pytest.raises(RemoteError) as caught:
            await h.client.request(**req)
        with pytest.raises(RemoteError) as caught_stream:
            async with h.client.stream(**req) as s:
                await s.lines()
    assert caught.value.error.startswith(error)
    assert caught_stream.value.error.startswith(error)
    assert up.requests == []


async def test_peer_not_in_allowed_peers_is_forbidden() -> None:
    config = config_for("http://upstream", allowed_peers=("someone-else",))
    async with running_relay(config, handler=_binary) as h:
        with pytest.raises(RemoteError, match="forbidden"):
            await h.client.request(path="/blob")
        with pytest.raises(RemoteError, match="forbidden"):
            await h.client.ping()


async def test_allowed_peer_by_public_key_is_served() -> None:
    from relay.memory import MemoryNetwork

    network = MemoryNetwork()
    pubkey = network.transport("peer").address.rsplit(".", 1)[1]
    config = config_for("http://upstream", allowed_peers=(pubkey,))
    async with running_relay(config, handler=_binary, network=network) as h:
        response = await h.client.request(path="/blob")
    assert response.ok


async def test_hop_by_hop_and_host_headers_are_dropped() -> None:
    headers = {
        "Host": "evil.example",
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "1",
        "Transfer-Encoding": "chunked",
        "Authorization": "Bearer k",
    }
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        response = await h.client.request(path="/echo", headers=headers)
    seen = response.json["headers"]
    assert seen["host"] == up.url.removeprefix("http://")
    assert "x-secret" not in seen and seen.get("transfer-encoding") is None
    assert seen["authorization"] == "Bearer k"


async def test_requests_past_workers_and_queue_are_busy() -> None:
    async with Upstream() as up:
        config = config_for(up.url, workers=1, queue=0)
        async with running_relay(config) as h:
            async with h.client.stream(path="/hang", json={}) as first:
                async for _ in first:
                    break
                with pytest.raises(RemoteError, match="busy"):
                    await h.client.request(path="/echo")


async def test_one_peer_cannot_take_more_than_its_limit() -> None:
    async with Upstream() as up:
        config = config_for(up.url, workers=4, queue=4, peer_limit=1)
        async with running_relay(config) as h:
            async with h.client.stream(path="/hang", json={}) as first:
                async for _ in first:
                    break
                with pytest.raises(RemoteError, match="busy"):
                    await h.client.request(path="/echo")


async def test_upstream_dying_mid_stream_is_reported_as_cut() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        with pytest.raises(RemoteError, match="upstream"):
            async with h.client.stream(path="/die", json={}) as s:
                await s.lines()
    end = s.result.end
    assert end is not None and not end.ok and not end.done_seen and end.last_seq == 2


async def test_upstream_unreachable_ends_with_error() -> None:
    async with Upstream() as up:
        url = up.url
    async with running_relay(config_for(url)) as h:
        with pytest.raises(RemoteError, match="upstream"):
            async with h.client.stream(path="/stream", json={}) as s:
                await s.lines()
        response_error = None
        try:
            await h.client.request(path="/echo")
        except RemoteError as exc:
            response_error = exc
    assert s.result.begin is None and s.result.end is not None
    assert response_error is not None and response_error.status == 502


async def test_upstream_timeout_ends_with_timeout() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        with pytest.raises(RemoteError, match="timeout"):
            async with h.client.stream(path="/stream?n=2&delay=5", json={}, timeout_ms=200) as s:
                await s.lines()
    assert s.result.end is not None and s.result.end.last_seq == 1


async def test_sse_lines_are_relayed_with_done_and_eot() -> None:
    async with Upstream() as up, running_relay(config_for(up.url)) as h:
        async with h.client.stream(path="/v1/sse", json={}) as s:
            lines = await s.lines()
    assert [line.line for line in lines][-1] == "data: [DONE]"
    assert all(line.line.startswith("data: ") for line in lines)
    end = s.result.end
    assert end is not None and end.done_seen and end.eot_seen


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ('{"event":"relay.http","id":"a1","req":"nope"}', "bad request: 'req' must be an object"),
        ('{"event":"relay.http","id":"a1","req":{"service":"ollama","method":7}}', "bad request"),
        ('{"event":"relay.teleport","id":"a1"}', "bad request: unknown event"),
        ('{"event":"relay.http","id":"a1","req":{', "bad request: not JSON"),
    ],
    ids=["req-not-object", "method-not-string", "unknown-event", "truncated-json"],
)
async def test_malformed_dm_with_id_gets_error_reply(payload: str, error: str) -> None:
    async with running_relay(config_for("http://upstream"), with_client=False) as h:
        await h.send_raw(payload)
        reply = await h.next_raw()
    assert reply["event"] == "relay.response" and reply["id"] == "a1"
    assert reply["ok"] is False and reply["error"].startswith(error)


@pytest.mark.parametrize(
    "payload",
    ["", "null", "[1,2]", "not json", '{"event":5}', '{"id":{}}', "{" * 100_000, "x" * 4_100_000],
    ids=["empty", "null", "list", "text", "event-int", "id-object", "deep", "huge"],
)
async def test_malformed_dm_without_id_is_dropped_and_relay_keeps_serving(payload: str) -> None:
    async with running_relay(config_for("http://upstream")) as h:
        await h.send_raw(payload)
        pong, _ = await h.client.ping()
        frames = h.frames_to_peer()
    assert pong.addr == h.relay.address
    assert [f["event"] for f in frames] == ["relay.pong"]


async def test_reply_frames_sent_to_the_relay_are_never_answered() -> None:
    async with running_relay(config_for("http://upstream")) as h:
        await h.send_raw('{"event":"relay.response","id":"x","ok":false,"error":"busy"}')
        await h.send_raw('{"event":"relay.pong","ts":1,"addr":"a"}')
        await h.client.ping()
        frames = h.frames_to_peer()
    assert [f["event"] for f in frames] == ["relay.pong"]


async def test_a_response_that_would_outgrow_one_dm_is_cut_to_fit() -> None:
    escaped = json.dumps({"s": '"\\' * 3000})  # re-encoding keeps every escape

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return httpx.Response(200, content=escaped.encode(), headers=headers)

    config = config_for("http://upstream", max_dm_b=8000, max_body_b=20_000)
    async with running_relay(config, handler=handler) as h:
        response = await h.client.request(path="/big")
        sizes = [len(dm.payload.encode()) for dm in h.network.sent_by(h.relay.address)]
    assert response.truncated and response.json is None and max(sizes) <= 8000
    assert escaped.encode().startswith(base64.b64decode(response.body_b64 or ""))


@pytest.mark.parametrize(
    "req",
    [
        '{"service":"ollama","path":"/\\ud800"}',
        '{"service":"ollama","headers":{"X-A":"\\ud800"}}',
        '{"url":"http://\\ud800/"}',
        '{"service":"ollama","json":{"a":"\\ud800"},"method":"POST"}',
    ],
    ids=["path", "header", "url", "json"],
)
async def test_lone_surrogates_anywhere_never_stop_the_relay(req: str) -> None:
    config = config_for("http://upstream", allow_urls=("http://example.com/",))
    async with running_relay(config, handler=_binary) as h:
        await h.send_raw('{"event":"relay.http","id":"s1","req":' + req + "}")
        pong, _ = await h.client.ping()
        await _wait_frame(h, "relay.response")
        replies = [f for f in h.frames_to_peer() if f.get("id") == "s1"]
    assert pong.addr == h.relay.address
    assert len(replies) == 1 and replies[0]["event"] == "relay.response"


async def test_cancel_while_queued_never_reaches_upstream() -> None:
    async with Upstream() as up:
        config = config_for(up.url, workers=1, queue=4, peer_limit=4)
        async with running_relay(config) as h:
            async with h.client.stream(path="/hang", json={}) as first:
                async for _ in first:
                    break
                waiting = h.client.stream(path="/stream?n=3", json={})
                await waiting.__aenter__()
                cancel = {"event": "relay.cancel", "id": waiting.request.id}
                await h.peer.send(h.relay.address, json.dumps(cancel))
                with pytest.raises(RemoteError, match="cancelled"):
                    await waiting.lines()
                await waiting.__aexit__(None, None, None)
    assert [r["path"] for r in up.requests] == ["/hang"]
