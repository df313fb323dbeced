"""Fixtures for the llama.cpp engine tests: ONE engine simulator (and one proxy) per session.

Loading the model takes about 2 s and its weights about 250 MB of memory, so every test of the
real engine shares the same server: two slots (NUM_PARALLEL=2) of 512 tokens each. Tests under
parallel load never expect exact text: sequences sharing a batch change each other's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer

MODEL = "gemma3-270m-base:q4_k_m"
PARALLEL = 2
LOAD_TIMEOUT_S = 90.0


@pytest.fixture(scope="session")
def engine_sim() -> Iterator[SimServer]:
    """The simulator on its llama.cpp engine, with the model loaded in its worker."""
    with SimServer(engine="llamacpp", num_parallel=PARALLEL, context_length=512) as server:
        server.wait_for(lambda s: s["engine"]["ready"], timeout=LOAD_TIMEOUT_S)
        yield server


@pytest.fixture(scope="session")
def engine_proxy(engine_sim: SimServer) -> Iterator[ProxyServer]:
    """The farm's proxy in front of the engine simulator."""
    with ProxyServer([engine_sim.url]) as proxy:
        yield proxy


@pytest.fixture(params=["direct", "proxy"])
def engine_url(request: pytest.FixtureRequest, engine_sim: SimServer) -> str:
    """The engine simulator's URL, directly and through the proxy."""
    if request.param == "direct":
        return engine_sim.url
    proxy: ProxyServer = request.getfixturevalue("engine_proxy")
    return proxy.url


@pytest.fixture
def engine_client(engine_url: str) -> Iterator[ollama.Client]:
    """The official client on that URL."""
    with ollama.Client(host=engine_url) as client:
        yield client


def tokens_of(sim: SimServer, text: str) -> list[int]:
    """The engine's own token ids of `text` (no BOS), from the simulator's witness route."""
    with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as http:
        reply = http.post("/_sim/tokenize", json={"model": MODEL, "text": text})
    reply.raise_for_status()
    tokens: list[Any] = reply.json()["tokens"]
    return tokens
