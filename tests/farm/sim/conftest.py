"""Fixtures for the simulator tests: a shared fast simulator subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from farm.sim.child import SimServer

FAST = {"load_ms": 60, "decode_ms": 4, "prefill_ms_per_token": 0.1}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator with fast timings and two slots, shared by read-mostly tests."""
    with SimServer(num_parallel=2, **FAST) as server:
        yield server


@pytest.fixture
def client(sim: SimServer) -> Iterator[ollama.Client]:
    """The official sync client pointed at the shared simulator (closed afterwards)."""
    with ollama.Client(host=sim.url) as official:
        yield official
