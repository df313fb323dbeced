"""Acceptance: the proxy in front of the Ollama simulator, through real clients.

Both run as subprocesses (`SimServer`, `ProxyServer`); the official `ollama` client, `curl -N`
and httpx talk to them over loopback. The 100 ms bounds are the promise: a client that leaves
frees its Ollama slot (or its place in the queue) at once.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer

MODEL = "gemma3:4b"
FAST = {"load_ms": 30, "decode_ms": 3, "prefill_ms_per_token": 0.05, "seed": 7}
# Fields that legitimately differ between two runs of the same request (clock readings).
VOLATILE = {
    "created_at",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[SimServer, ProxyServer]]:
    """One simulator and one proxy in front of it, shared by the read-mostly tests."""
    with SimServer(num_parallel=4, pull_ms=40, **FAST) as sim, ProxyServer([sim.url]) as proxy:
        yield sim, proxy


def _strip(chunk: Any) -> dict[str, Any]:
    doc = chunk if isinstance(chunk, dict) else chunk.model_dump(exclude_none=True)
    return {k: v for k, v in doc.items() if k not in VOLATILE}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_official_client_generate_is_identical_direct_and_proxied(pair, stream):
    sim, proxy = pair
    results = []
    for url in (sim.url, proxy.url):
        with ollama.Client(host=url) as client:
            reply = client.generate(
                model=MODEL, prompt="tell me", stream=stream, options={"seed": 3, "num_predict": 12}
            )
            results.append([_strip(c) for c in reply] if stream else _strip(reply))
    direct, proxied = results
    assert proxied == direct
    if stream:
        assert len(direct) > 2 and direct[-1]["done"] is True


def test_official_client_chat_list_ps_and_errors_match(pair):
    sim, proxy = pair
    seen = []
    for url in (sim.url, proxy.url):
        with ollama.Client(host=url) as client:
            chat = client.chat(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                options={"seed": 5, "num_predict": 8},
            )
            pieces = [c.message.content for c in chat]
            names = sorted(m.model for m in client.list().models)
            loaded = sorted(m.model for m in client.ps().models)
            with pytest.raises(ollama.ResponseError) as missing:
                client.generate(model="nope:1b", prompt="x")
            seen.append((pieces, names, loaded, missing.value.status_code, missing.value.error))
    assert seen[1] == seen[0]
    assert seen[0][3] == 404


def test_official_client_embed_show_pull_copy_delete_and_blobs_match(pair, tmp_path):
    sim, proxy = pair
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"not really a model" * 1000)
    seen = []
    for url, copy in ((sim.url, "copy-direct:1"), (proxy.url, "copy-proxied:1")):
        with ollama.Client(host=url) as client:
            embed = client.embed(model=MODEL, input=["a", "b"])
            show = client.show(MODEL)
            pulled = [event.status for event in client.pull("qwen3:0.6b", stream=True)]
            removed = client.delete("qwen3:0.6b").status
            copied = client.copy(MODEL, copy).status
            digest = client.create_blob(blob)
            head = httpx.head(f"{url}/api/blobs/{digest}", trust_env=False).status_code
            seen.append((embed.embeddings, show.details, pulled, removed, copied, digest, head))
    assert seen[1] == seen[0]
    assert seen[0][2][0] == "pulling manifest" and seen[0][2][-1] == "success"
    assert seen[0][3:5] == ("success", "success") and seen[0][6] == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_openai_sse_stream_is_identical_direct_and_proxied(pair):
    sim, proxy = pair
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "max_tokens": 5,
            "seed": 2,
        }
    )
    events = []
    for url in (sim.url, proxy.url):
        out = subprocess.run(
            ["curl", "-sSN", "--fail-with-body", url + "/v1/chat/completions", "-d", body],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout.decode()
        frames = [f for f in out.split("\n\n") if f]
        assert frames[-1] == "data: [DONE]"
        docs = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
        events.append([[c["delta"] for c in d["choices"]] for d in docs])
    assert events[1] == events[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_streams_same_lines_direct_and_proxied(pair):
    sim, proxy = pair
    body = json.dumps(
        {"model": MODEL, "prompt": "curl me", "options": {"seed": 1, "num_predict": 6}}
    )
    outputs = []
    for url in (sim.url, proxy.url):
        out = subprocess.run(
            ["curl", "-sSN", "--fail-with-body", url + "/api/generate", "-d", body],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        outputs.append([_strip(json.loads(line)) for line in out.splitlines()])
    assert outputs[1] == outputs[0]
    assert outputs[0][-1]["done"] is True


def _open_stream(url: str, prompt: str, num_predict: int) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(timeout=30, trust_env=False)
    request = client.build_request(
        "POST",
        url + "/api/generate",
        json={"model": MODEL, "prompt": prompt, "options": {"num_predict": num_predict}},
    )
    return client, client.send(request, stream=True)


def _time_until(sim: SimServer, predicate: Any, timeout: float = 5.0) -> float:
    start = time.perf_counter()
    sim.wait_for(predicate, timeout)
    return time.perf_counter() - start


def test_disconnect_mid_stream_frees_slot_within_100ms():
    with SimServer(num_parallel=1, **{**FAST, "decode_ms": 20}) as sim:
        with ProxyServer([sim.url]) as proxy:
            client, resp = _open_stream(proxy.url, "long", 2000)
            lines = resp.iter_lines()
            next(lines)
            next(lines)
            assert sim.state()["models"][MODEL]["active"] == 1
            client.close()  # closes the socket mid-stream
            freed_s = _time_until(sim, lambda s: s["models"][MODEL]["active"] == 0)
            assert freed_s < 0.1
            assert sim.state()["requests"]["cancelled"] == 1


def _raw_generate(port: int, prompt: str) -> socket.socket:
    """Send a generate request on a bare socket, so the test controls exactly when it closes."""
    body = json.dumps({"model": MODEL, "prompt": prompt}).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def test_disconnect_while_queued_leaves_sim_queue_within_100ms():
    # decode_ms=100 makes the holder keep its slot for seconds (24+ tokens).
    with SimServer(num_parallel=1, **{**FAST, "decode_ms": 100}) as sim:
        with ProxyServer([sim.url]) as proxy:
            holder, held = _open_stream(proxy.url, "holder", 2000)
            held_lines = held.iter_lines()  # keep a reference: dropping it closes the stream
            next(held_lines)
            waiter = _raw_generate(proxy.port, "queued")
            sim.wait_for(lambda s: s["models"][MODEL]["waiting"] == 1)
            waiter.close()  # the client gives up before any header arrived
            left_s = _time_until(sim, lambda s: s["models"][MODEL]["waiting"] == 0)
            assert left_s < 0.1
            state = sim.state()
            assert state["models"][MODEL]["active"] == 1  # the holder streams on
            assert state["requests"]["finished"] == 0
            holder.close()


def test_backend_killed_mid_stream_gives_error_line_then_502():
    with SimServer(num_parallel=1, **{**FAST, "decode_ms": 20}) as sim:
        with ProxyServer([sim.url]) as proxy:
            client, resp = _open_stream(proxy.url, "doomed", 2000)
            lines = resp.iter_lines()
            assert "response" in json.loads(next(lines))
            sim.kill()
            tail = [json.loads(line) for line in lines]
            client.close()
            assert "error" in tail[-1]
            assert all("error" not in doc for doc in tail[:-1])
            with ollama.Client(host=proxy.url) as official:
                with pytest.raises(ollama.ResponseError) as down:
                    official.generate(model=MODEL, prompt="anyone?")
            assert down.value.status_code == 502
            assert "unreachable" in down.value.error


def test_two_backends_balance_eight_streams_and_fail_over():
    with (
        SimServer(num_parallel=4, **{**FAST, "decode_ms": 100}) as one,
        SimServer(num_parallel=4, **{**FAST, "decode_ms": 100}) as two,
        ProxyServer([one.url, two.url], num_parallel=4, health_interval=0.2) as proxy,
    ):
        streams = [_open_stream(proxy.url, f"p{i}", 2000) for i in range(8)]
        readers = [resp.iter_lines() for _, resp in streams]
        for reader in readers:
            next(reader)
        actives = [s.state()["models"][MODEL]["active"] for s in (one, two)]
        assert actives == [4, 4]
        one.kill()
        for client, _ in streams:
            client.close()
        with ollama.Client(host=proxy.url) as official:
            for i in range(4):
                reply = official.generate(
                    model=MODEL, prompt=f"after {i}", options={"num_predict": 3}
                )
                assert reply.done
        assert two.state()["requests"]["finished"] == 4


@pytest.mark.parametrize("key", [None, "s3cret"], ids=["auth-off", "auth-on"])
def test_api_key_with_official_client(key):
    env = {"FARM_API_KEY": key} if key else {}
    with SimServer(**FAST) as sim, ProxyServer([sim.url], env=env) as proxy:
        with ollama.Client(host=proxy.url) as anonymous:
            if key is None:
                assert anonymous.generate(model=MODEL, prompt="x", options={"num_predict": 2}).done
            else:
                with pytest.raises(ollama.ResponseError) as denied:
                    anonymous.list()
                assert denied.value.status_code == 401
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with ollama.Client(host=proxy.url, headers=headers) as keyed:
            assert [m.model for m in keyed.list().models] == [MODEL]
        assert proxy.health()[0] == 200


def test_backend_error_line_mid_stream_reaches_client_unchanged():
    with SimServer(fail_after_tokens=3, **FAST) as sim, ProxyServer([sim.url]) as proxy:
        errors = []
        for url in (sim.url, proxy.url):
            with ollama.Client(host=url) as client:
                with pytest.raises(ollama.ResponseError) as failed:
                    for _ in client.generate(model=MODEL, prompt="fail", stream=True):
                        pass
                errors.append((failed.value.status_code, failed.value.error))
        assert errors[1] == errors[0]


def test_health_labels_a_simulator_backend_synthetic(pair):
    _, proxy = pair
    doc = httpx.get(proxy.url + "/_health", timeout=5).json()
    assert doc["synthetic"] is True
    assert [b["synthetic"] for b in doc["backends"]] == [True]
