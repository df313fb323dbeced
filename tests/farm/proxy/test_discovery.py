"""`--backend-dns`: backends found by name, joining and draining as the answer changes.

The acceptance test runs the proxy and two simulators as processes. The name is answered by a
hosts-format file the test rewrites (`--dns-hosts-file`), and the simulators listen on two
loopback addresses with one port, as two pods behind a headless Service do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ollama
import pytest

from farm.common.childserver import poll_until
from farm.common.net import free_port
from farm.proxy.child import ProxyServer
from farm.proxy.discovery import (
    Discovery,
    DnsTarget,
    HostsFileResolver,
    parse_hosts,
    system_resolve,
)
from farm.proxy.errors import ResolveError
from farm.proxy.pool import BackendPool
from farm.proxy.settings import ProxySettings
from farm.settings import SettingsError, load, to_argv
from farm.sim.child import SimServer

MODEL = "gemma3:4b"
# 10 ms a token: a long stream lasts seconds, long enough to be drained while it runs.
PACE = {"load_ms": 20, "decode_ms": 10, "prefill_ms_per_token": 0.05, "response_tokens": "1000"}
A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"
NAME = "ollama.farm.svc.cluster.local"


# --- units ------------------------------------------------------------------------------------


def test_hosts_text_gives_every_address_of_the_name_in_order():
    text = f"""# comment
    127.0.0.2   {NAME} ollama   # trailing comment
    not-an-ip   {NAME}
    ::1         other
    fd00::7     OLLAMA.farm.svc.cluster.local.
    127.0.0.2   {NAME}
    """
    assert parse_hosts(text, NAME) == ["127.0.0.2", "fd00::7"]
    assert parse_hosts(text, "ollama") == ["127.0.0.2"]
    assert parse_hosts(text, "missing") == []


def test_target_urls_bracket_ipv6():
    target = DnsTarget("ollama", 11434)
    assert target.url("10.0.0.5") == "http://10.0.0.5:11434"
    assert target.url("fd00::7") == "http://[fd00::7]:11434"
    assert target.source == "dns ollama:11434"


@pytest.mark.anyio
async def test_system_resolver_answers_localhost():
    assert set(await system_resolve("localhost")) & {"127.0.0.1", "::1"}


@pytest.mark.anyio
async def test_an_unreadable_hosts_file_is_a_failure_not_an_empty_answer(tmp_path: Path):
    with pytest.raises(ResolveError, match="--dns-hosts-file"):
        await HostsFileResolver(tmp_path / "absent")("x")


def test_sync_adds_drains_revives_and_prunes():
    pool = BackendPool(["http://static:1"])
    added = pool.sync("dns n:1", ["http://a:1", "http://b:1", "http://static:1"])
    assert [b.url for b in added] == ["http://a:1", "http://b:1"]  # static stays static's
    a = pool.backends[1]
    a.in_flight = 1
    pool.sync("dns n:1", ["http://b:1"])
    assert [b.url for b in pool.backends] == ["http://static:1", "http://b:1"]
    assert a.draining and pool.draining == [a] and pool.prune() == []
    assert all(pool.pick(None) is not a for _ in range(4))
    pool.sync("dns n:1", ["http://a:1", "http://b:1"])  # back before it finished
    assert pool.backends[-1] is a and not a.draining
    pool.sync("dns n:1", [])
    a.in_flight = 0
    assert {b.url for b in pool.prune()} == {"http://a:1", "http://b:1"}
    assert [b.url for b in pool.backends] == ["http://static:1"]


@pytest.mark.anyio
async def test_a_failing_resolver_keeps_the_last_answer():
    answers: list[list[str] | Exception] = [["127.0.0.9"], ResolveError("server failure"), []]

    async def resolver(name: str) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def no_probe(_backends: Any) -> None:
        return None

    pool = BackendPool([])
    found = Discovery(pool, [DnsTarget("n", 80)], resolver, no_probe, lambda _b: None)
    await found.resolve_once()
    await found.resolve_once()
    assert [b.url for b in pool.backends] == ["http://127.0.0.9:80"]
    assert found.document()[0]["error"] == "server failure"
    await found.resolve_once()  # "no such name" is an answer: nothing left
    assert pool.backends == [] and found.document()[0]["error"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend-dns", "ollama"], "--backend-dns"),
        (["--backend-dns", "ollama:0"], "port must be 1-65535"),
        (["--backend-dns", "bad name:80"], "NAME:PORT"),
        (["--backend", "http://a:1", "--backend-label", "http://b:1=gpu0"], "not a --backend"),
        (["--backend", "http://a:1", "--backend-label", "http://a:1"], "URL=LABEL"),
    ],
    ids=["no-port", "port-0", "space", "label-unknown", "label-empty"],
)
def test_bad_discovery_and_label_values_are_one_line(argv: list[str], message: str):
    with pytest.raises(SettingsError, match=message):
        load(ProxySettings, argv, {})


def test_labels_and_names_survive_to_argv():
    settings = ProxySettings(
        backend=("http://a:1/",),
        backend_label=("http://a:1=box-a gpu0 GPU-5f3c",),
        backend_dns=("ollama.farm:11434",),
        dns_hosts_file=Path("/etc/farm-hosts"),
    )
    assert settings.labels == {"http://a:1": "box-a gpu0 GPU-5f3c"}
    assert load(ProxySettings, to_argv(settings), {}).settings == settings
    assert load(ProxySettings, ["--backend-dns", "x:1"], {}).settings.backend == ()


# --- acceptance: a proxy process, two simulators, a name the test answers -------------------


def _write_hosts(path: Path, *hosts: str) -> None:
    # Replaced in one rename, as a mounted ConfigMap is: a reader never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{h} {NAME}\n" for h in hosts), encoding="utf-8")
    os.replace(tmp, path)


def _entries(proxy: ProxyServer) -> dict[str, dict[str, Any]]:
    return {b["url"]: b for b in proxy.health()[1]["backends"]}


def _served(sim: SimServer) -> int:
    return int(sim.state()["requests"]["finished"])


@pytest.mark.allow_hosts(["127.0.0.1", A_HOST, B_HOST])
def test_a_backend_added_to_the_name_takes_traffic_and_a_removed_one_drains(tmp_path: Path):
    port = free_port(A_HOST)
    hosts = tmp_path / "hosts"
    _write_hosts(hosts, A_HOST)
    a_url, b_url = f"http://{A_HOST}:{port}", f"http://{B_HOST}:{port}"
    with (
        SimServer(host=A_HOST, port=port, num_parallel=4, **PACE) as a,
        SimServer(host=B_HOST, port=port, num_parallel=4, **PACE) as b,
        ProxyServer(
            [],
            backend_dns=(f"{NAME}:{port}",),
            dns_hosts_file=hosts,
            dns_interval=0.2,
            health_interval=0.5,
            access_log=False,
        ) as proxy,
        ollama.Client(host=proxy.url) as client,
    ):
        assert list(_entries(proxy)) == [a_url]
        assert _entries(proxy)[a_url]["source"] == f"dns {NAME}:{port}"
        for _ in range(3):
            client.generate(model=MODEL, prompt="hi", options={"num_predict": 2})
        # (Polled: a simulator may count a request finished just after its last byte.)
        poll_until(lambda: _served(a) == 3, 5, "three requests served by the one backend")
        assert _served(b) == 0

        # Added: the launcher (here the test) warms it, then the name answers it too.
        with ollama.Client(host=b.url) as direct:
            direct.generate(model=MODEL, prompt="warm", options={"num_predict": 1})
        _write_hosts(hosts, A_HOST, B_HOST)
        poll_until(lambda: b_url in _entries(proxy), 10, "the added backend to join")
        for _ in range(6):
            client.generate(model=MODEL, prompt="hi", options={"num_predict": 2})
        # Traffic within one re-resolve: the next requests split between the two.
        poll_until(lambda: _served(a) + _served(b) == 3 + 1 + 6, 5, "six more served")
        assert _served(b) > 1

        # Removed while streaming: its stream finishes, it gets no new request.
        streamed: list[Any] = []
        stream = client.generate(
            model=MODEL, prompt="long", stream=True, options={"num_predict": 1000}
        )
        streamed.append(next(stream))
        busy = next(url for url, e in _entries(proxy).items() if e["in_flight"])
        victim, survivor = (a, b) if busy == a_url else (b, a)
        _write_hosts(hosts, survivor.host)
        poll_until(lambda: _entries(proxy)[busy]["draining"], 10, "the removed one to drain")
        before = int(victim.state()["requests"]["started"])
        for _ in range(4):
            client.generate(model=MODEL, prompt="hi", options={"num_predict": 2})
        assert int(victim.state()["requests"]["started"]) == before
        streamed.extend(stream)
        assert streamed[-1].done is True and len(streamed) > 100
        poll_until(lambda: busy not in _entries(proxy), 10, "the drained one to be dropped")
        assert list(_entries(proxy)) == [survivor.url]


def test_each_backend_label_shows_in_health_beside_its_source():
    with SimServer(**PACE) as sim, SimServer(**PACE) as other:
        label = "box-a gpu0 GPU-5f3c1a2b-0000-4000-8000-000000000000"
        with ProxyServer(
            [sim.url, other.url], backend_label=(f"{sim.url}/={label}",), access_log=False
        ) as proxy:
            entries = _entries(proxy)
    assert entries[sim.url]["label"] == label
    assert entries[other.url]["label"] is None
    assert {e["source"] for e in entries.values()} == {"static"}
    assert not any(e["draining"] for e in entries.values())
