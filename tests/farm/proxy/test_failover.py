"""Failover before the first response byte: refused or reset backends cost no client an error.

The in-process tests break a backend in one exact way (`FlakyBackend`); the acceptance tests
run the proxy and two simulators as processes and talk through the official `ollama` client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import ollama
import pytest

from farm.common.childserver import poll_until
from farm.common.net import free_port
from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from tests.farm.proxy.fake_backend import FakeBackend
from tests.farm.proxy.flaky_backend import FlakyBackend

MODEL = "gemma3:4b"
FAST = {"load_ms": 20, "decode_ms": 2, "prefill_ms_per_token": 0.05, "seed": 3}
# No periodic probe during a test: a backend that dies is only found out by a request.
NO_PROBES = {"health_interval": 600.0}


def failovers(metrics_text: str, reason: str) -> float:
    """The `farm_proxy_failovers_total{reason=...}` value in a Prometheus text page."""
    found = re.search(
        rf'^farm_proxy_failovers_total{{reason="{reason}"}} (\S+)$', metrics_text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def _metrics(http: httpx.AsyncClient, url: str) -> str:
    return (await http.get(url + "/metrics")).text


@pytest.fixture
async def flaky_pair(request):
    """(flaky, fake): a backend broken in the parametrized way, listed first, and a good one."""
    flaky = await FlakyBackend(request.param).start()
    fake = await FakeBackend().start()
    try:
        yield flaky, fake
    finally:
        await flaky.stop()
        await fake.stop()


@pytest.mark.anyio
@pytest.mark.parametrize("flaky_pair", ["reset", "close"], indirect=True, ids=["rst", "fin"])
async def test_a_backend_that_drops_the_request_before_any_byte_is_failed_over_once(
    flaky_pair, proxy_for
):
    flaky, fake = flaky_pair
    async with proxy_for([flaky.url, fake.url], **NO_PROBES) as proxy:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            resp = await http.post(proxy.url + "/api/generate", json={"model": "fake"})
            lines = resp.text.splitlines()
            metrics = await _metrics(http, proxy.url)
    assert resp.status_code == 200 and '"done": true' in lines[-1]
    assert flaky.broken == [b"/api/generate"]  # the first pick was the broken backend
    assert len(fake.state.seen) == 1
    assert failovers(metrics, "reset") == 1


@pytest.mark.anyio
async def test_a_second_reset_is_not_retried_so_no_request_runs_three_times(proxy_for):
    first, second = await FlakyBackend("reset").start(), await FlakyBackend("reset").start()
    try:
        async with proxy_for([first.url, second.url], **NO_PROBES) as proxy:
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                resp = await http.post(proxy.url + "/api/generate", json={"model": "fake"})
                metrics = await _metrics(http, proxy.url)
    finally:
        await first.stop()
        await second.stop()
    assert resp.status_code == 502
    assert "failed before responding" in resp.json()["error"]
    assert (first.broken, second.broken) == ([b"/api/generate"], [b"/api/generate"])
    assert failovers(metrics, "reset") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("flaky_pair", ["partial"], indirect=True, ids=["partial-status"])
async def test_a_response_that_has_begun_is_never_sent_elsewhere(flaky_pair, proxy_for):
    flaky, fake = flaky_pair
    async with proxy_for([flaky.url, fake.url], **NO_PROBES) as proxy:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            resp = await http.post(proxy.url + "/api/generate", json={"model": "fake"})
            metrics = await _metrics(http, proxy.url)
    assert resp.status_code == 502
    assert flaky.broken == [b"/api/generate"] and fake.state.seen == []
    assert failovers(metrics, "reset") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("flaky_pair", ["reset"], indirect=True, ids=["rst"])
async def test_a_streamed_upload_is_not_replayed_after_the_backend_took_it(flaky_pair, proxy_for):
    flaky, fake = flaky_pair
    blob = b"x" * 200_000
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with proxy_for([flaky.url, fake.url], **NO_PROBES) as proxy:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            resp = await http.post(proxy.url + f"/api/blobs/{digest}", content=blob)
    assert resp.status_code == 502
    assert fake.state.blob_bytes == 0


@pytest.mark.anyio
@pytest.mark.parametrize("flaky_pair", ["reset"], indirect=True, ids=["closed"])
async def test_a_refused_upload_goes_whole_to_the_next_backend(flaky_pair, proxy_for):
    flaky, fake = flaky_pair
    blob = b"y" * 200_000
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with proxy_for([flaky.url, fake.url], **NO_PROBES) as proxy:
        await flaky.stop()  # it answered the start-up probes; now its port is closed
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            resp = await http.post(proxy.url + f"/api/blobs/{digest}", content=blob)
            metrics = await _metrics(http, proxy.url)
    assert resp.status_code == 201
    assert fake.state.blob_bytes == len(blob)
    assert failovers(metrics, "connect") == 1


# --- acceptance: processes and the official client ------------------------------------------


@pytest.fixture
def two_warm_sims() -> Iterator[tuple[SimServer, SimServer]]:
    """Two simulators with the model loaded, as the launcher leaves them after warmup."""
    with SimServer(num_parallel=4, **FAST) as a, SimServer(num_parallel=4, **FAST) as b:
        for sim in (a, b):
            with ollama.Client(host=sim.url) as warm:
                warm.generate(model=MODEL, prompt="warm", options={"num_predict": 1})
        yield a, b


def test_a_closed_port_among_the_backends_never_costs_a_client_an_error(two_warm_sims):
    a, b = two_warm_sims
    closed = f"http://127.0.0.1:{free_port()}"
    with ProxyServer([closed, a.url, b.url], access_log=False, **NO_PROBES) as proxy:
        a.kill()  # a second closed port: this one was healthy when the proxy last looked
        with ollama.Client(host=proxy.url) as client:
            _use_every_way(client)
        text = proxy.metrics()
        status, health = proxy.health()
    assert failovers(text, "connect") >= 1  # `a` was picked at least once and failed over
    assert status == 200
    down = {entry["url"] for entry in health["backends"] if not entry["reachable"]}
    assert down == {closed, a.url}


def _use_every_way(client: ollama.Client) -> None:
    for i in range(8):
        chunks = list(
            client.generate(model=MODEL, prompt=f"p{i}", stream=True, options={"num_predict": 4})
        )
        assert chunks[-1].done is True
        reply = client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert reply.message.content
        assert MODEL in [m.model for m in client.list().models]


def test_killing_a_backend_mid_stream_ends_that_stream_with_an_error_line_only(two_warm_sims):
    a, b = two_warm_sims
    with ProxyServer([a.url, b.url], access_log=False, **NO_PROBES) as proxy:
        with httpx.Client(trust_env=False, timeout=20) as http:
            body = {"model": MODEL, "prompt": "long", "options": {"num_predict": 400}}
            with http.stream("POST", proxy.url + "/api/generate", json=body) as long:
                lines = long.iter_lines()
                assert '"done":false' in next(lines).replace(" ", "")
                victim = a if a.state()["requests"]["started"] == 2 else b
                victim.kill()
                rest = list(lines)
            # The next requests go to the survivor without an error.
            for _ in range(4):
                ok = http.post(
                    proxy.url + "/api/generate",
                    json={**body, "options": {"num_predict": 2}, "stream": False},
                )
                assert ok.status_code == 200, ok.text
    assert "error" in rest[-1]  # a stream that had begun is never replayed elsewhere
    survivor = b if victim is a else a
    poll_until(lambda: survivor.state()["requests"]["finished"] == 1 + 4, 5, "4 served")
