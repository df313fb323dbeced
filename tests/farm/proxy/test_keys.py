"""Named keys, fair slots and usage, through the official `ollama` and `openai` clients
against a real proxy process in front of the simulator."""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from farm.common.childserver import poll_until
from farm.keys.records import Limits
from farm.keys.store import KeyStore
from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer

MODEL = "gemma3:4b"
SLOTS = 2


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    # Answers as long as num_predict asks, so a stream is still running when a test needs it.
    with SimServer(
        num_parallel=SLOTS, load_ms=0, decode_ms=20, seed=3, response_tokens="2000"
    ) as server:
        yield server


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "keys.db"


@pytest.fixture
def proxy(sim: SimServer, db: Path) -> Iterator[ProxyServer]:
    KeyStore(db).close()
    with ProxyServer([sim.url], keys_db=db, num_parallel=SLOTS, access_log=False) as server:
        yield server


def add(db: Path, name: str, **limits: object) -> str:
    admin = bool(limits.pop("admin", False))
    store = KeyStore(db)
    try:
        return store.add(name, Limits(**limits), admin=admin)  # type: ignore[arg-type]
    finally:
        store.close()


_OPEN: list[ollama.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(proxy: ProxyServer, key: str) -> ollama.Client:
    """The official client with a key, as a user configures it (closed after the test)."""
    made = ollama.Client(host=proxy.url, headers={"Authorization": f"Bearer {key}"})
    _OPEN.append(made)
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metric(proxy: ProxyServer, name: str, key: str) -> float:
    for line in proxy.metrics().splitlines():
        if line.startswith(f'{name}{{key="{key}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_named_key_works_and_a_revoked_one_gets_401_next(proxy: ProxyServer, db: Path) -> None:
    secret = add(db, "alice")
    reply = client(proxy, secret).generate(model=MODEL, prompt="hi", options={"num_predict": 3})
    assert reply.done
    store = KeyStore(db)
    store.revoke("alice")
    store.close()
    with pytest.raises(ollama.ResponseError) as err:
        client(proxy, secret).generate(model=MODEL, prompt="hi", options={"num_predict": 3})
    assert err.value.status_code == 401 and "revoked" in err.value.error


def test_openai_client_with_a_named_key(proxy: ProxyServer, db: Path) -> None:
    secret = add(db, "bob")
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key=secret, max_retries=0) as oa:
        chat = oa.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    assert chat.choices[0].message.content
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="ofk_wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_only_admin_keys_change_the_farm(proxy: ProxyServer, db: Path) -> None:
    user = client(proxy, add(db, "carol"))
    with pytest.raises(ollama.ResponseError) as err:
        user.delete(MODEL)
    assert err.value.status_code == 403 and "admin" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        user.pull(MODEL)
    assert err.value.status_code == 403
    admin = client(proxy, add(db, "root", admin=True))
    assert admin.copy(MODEL, "copy-of:latest").status == "success"
    assert admin.delete("copy-of:latest").status == "success"


def test_over_quota_gets_429_with_retry_after(proxy: ProxyServer, db: Path) -> None:
    secret = add(db, "dave", max_streams=1, max_queued=0)
    body = {"model": MODEL, "prompt": "long", "options": {"num_predict": 200}}
    with httpx.Client(base_url=proxy.url, timeout=30, trust_env=False) as http:
        with http.stream("POST", "/api/generate", json=body, headers=bearer(secret)) as first:
            lines = first.iter_lines()
            assert first.status_code == 200 and next(lines)
            second = http.post("/api/generate", json=body, headers=bearer(secret))
            lines.close()
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert "--max-queued 0" in second.json()["error"]


def test_a_queued_client_that_leaves_is_gone_from_the_queue(proxy: ProxyServer, db: Path) -> None:
    hog, waiter = add(db, "hog"), add(db, "waiter")
    body = {"model": MODEL, "prompt": "x", "options": {"num_predict": 400}}
    with contextlib.ExitStack() as open_streams:
        http = open_streams.enter_context(
            httpx.Client(base_url=proxy.url, timeout=30, trust_env=False)
        )
        for _ in range(SLOTS):  # the hog holds every slot
            response = open_streams.enter_context(
                http.stream("POST", "/api/generate", json=body, headers=bearer(hog))
            )
            lines = response.iter_lines()
            next(lines)
            open_streams.callback(lines.close)
        left = threading.Event()

        def queue_then_leave() -> None:
            with httpx.Client(base_url=proxy.url, timeout=1.0, trust_env=False) as short:
                try:
                    short.post("/api/generate", json=body, headers=bearer(waiter))
                except httpx.TimeoutException:
                    left.set()

        thread = threading.Thread(target=queue_then_leave)
        thread.start()
        poll_until(lambda: metric(proxy, "farm_proxy_key_queued", "waiter") == 1, 10, "queued")
        thread.join(10)
        assert left.is_set()
        poll_until(lambda: metric(proxy, "farm_proxy_key_queued", "waiter") == 0, 2, "left queue")
        assert metric(proxy, "farm_proxy_key_active", "hog") == SLOTS


def test_usage_is_recorded_per_key_and_printed(proxy: ProxyServer, db: Path) -> None:
    secret = add(db, "erin")
    for _ in range(3):
        client(proxy, secret).generate(model=MODEL, prompt="count", options={"num_predict": 5})
    out = subprocess.run(
        [sys.executable, "-m", "farm.keys", "usage", "--keys-db", str(db), "--csv"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    row = next(line for line in out.stdout.splitlines() if line.startswith("erin,"))
    assert row.split(",")[1:5] == ["3", "0", row.split(",")[3], "15"]
    assert metric(proxy, "farm_proxy_key_output_tokens_total", "erin") == 15


def test_usage_survives_a_kill_9_mid_load(sim: SimServer, db: Path) -> None:
    secret = add(db, "frank")
    finished = 0
    with ProxyServer([sim.url], keys_db=db, num_parallel=SLOTS, access_log=False) as proxy:
        lock = threading.Lock()

        def one(i: int) -> None:
            nonlocal finished
            try:
                reply = client(proxy, secret).generate(
                    model=MODEL, prompt=f"p{i}", options={"num_predict": 4}
                )
            except (ollama.ResponseError, httpx.HTTPError, ConnectionError):
                return  # cut by the kill: not finished, so no row is owed
            if reply.done:
                with lock:
                    finished += 1

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(one, i) for i in range(60)]
            poll_until(lambda: finished >= 10, 30, "some requests finished")
            proxy.kill()
            for job in jobs:
                job.result()
    rows = (
        sqlite3.connect(db)
        .execute("SELECT key, model, output_tokens, status FROM usage WHERE key = 'frank'")
        .fetchall()
    )
    assert len(rows) >= finished
    assert all(r == ("frank", MODEL, 4, 200) for r in rows)


def test_a_corrupt_database_stops_the_proxy_with_one_line(sim: SimServer, tmp_path: Path) -> None:
    bad = tmp_path / "keys.db"
    bad.write_bytes(b"\x01garbage" * 100)
    server = ProxyServer([sim.url], keys_db=bad)
    out = subprocess.run(server.argv, env=server._env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if "keys.db" in line]
    assert len(lines) == 1 and "move it away" in lines[0]


def test_nkn_peers_behind_the_relay_key_are_principals_of_their_own(
    sim: SimServer, db: Path
) -> None:
    store = KeyStore(db)
    relay = store.add("relay", Limits(max_streams=1, max_queued=0), relay=True)
    store.add("phone", Limits(), nkn_peer="ab" * 32)
    plain = store.add("plain", Limits(max_streams=1, max_queued=0))
    store.close()
    body = {"model": MODEL, "prompt": "x", "options": {"num_predict": 300}}

    def hold(http: httpx.Client, key: str, peer: str) -> None:
        """Start a stream for `peer` and keep it open until the test ends."""
        response = stack.enter_context(
            http.stream(
                "POST", "/api/generate", json=body, headers={**bearer(key), "x-farm-peer": peer}
            )
        )
        lines = response.iter_lines()
        assert response.status_code == 200 and next(lines)
        stack.callback(lines.close)

    with contextlib.ExitStack() as stack:
        # No idle hold: this test is about who counts as whom, not about between-turn slots.
        proxy = stack.enter_context(
            ProxyServer([sim.url], keys_db=db, num_parallel=4, fair_idle_reserve=0)
        )
        http = stack.enter_context(httpx.Client(base_url=proxy.url, timeout=30, trust_env=False))
        hold(http, relay, "laptop.cd")  # one stream for this peer: its limit, per peer
        again = http.post(
            "/api/generate", json=body, headers={**bearer(relay), "x-farm-peer": "laptop.cd"}
        )
        assert again.status_code == 429 and "relay/laptop.cd" in again.json()["error"]
        # Another peer of the same relay is not held back by the first one's stream.
        reply = http.post(
            "/api/generate",
            json={**body, "options": {"num_predict": 2}},
            headers={**bearer(relay), "x-farm-peer": "other.ef"},
        )
        assert reply.status_code == 200
        assert metric(proxy, "farm_proxy_key_active", "relay/laptop.cd") == 1
        # A peer with a key of its own is counted under that key (by its public key here).
        ok = http.post(
            "/api/generate",
            json={**body, "options": {"num_predict": 2}},
            headers={**bearer(relay), "x-farm-peer": "phone." + "ab" * 32},
        )
        assert ok.status_code == 200
        assert metric(proxy, "farm_proxy_key_requests_total", "phone") == 0  # two labels
        assert 'key="phone",status="200"' in proxy.metrics()
        # A key not made for the relay cannot pose as a peer: it stays itself.
        hold(http, plain, "laptop.cd")
        refused = http.post(
            "/api/generate", json=body, headers={**bearer(plain), "x-farm-peer": "new.peer"}
        )
        assert refused.status_code == 429 and "'plain'" in refused.json()["error"]
