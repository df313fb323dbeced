"""A real model's answer through the whole path: llama.cpp engine -> proxy -> relay -> NKN -> peer.

The peer and the relay use the real nkn-sdk on the local NKN node (the harness of
test_nkn_e2e.py). The text is the model's and never compared: only its shape and counts are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from farm.proxy.child import ProxyServer
from farm.sim.child import SimServer
from relay.localnode.child import LocalNode
from tests.farm.sim.engines.conftest import LOAD_TIMEOUT_S, MODEL, PARALLEL
from tests.relay.test_nkn_e2e import node, over_nkn

__all__ = ["node"]  # the local NKN node fixture, shared with the other NKN tests' harness
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[SimServer, ProxyServer]]:
    """The simulator on its llama.cpp engine (model loaded) and the proxy in front of it."""
    with SimServer(engine="llamacpp", num_parallel=PARALLEL, context_length=512) as sim:
        sim.wait_for(lambda s: s["engine"]["ready"], timeout=LOAD_TIMEOUT_S)
        with ProxyServer([sim.url]) as proxy:
            yield sim, proxy


async def test_a_real_model_answer_streams_over_nkn(
    node: LocalNode, engine: tuple[SimServer, ProxyServer]
) -> None:
    sim, proxy = engine
    # Greedy decoding: the same answer each time, so the one over NKN can be compared with
    # the one the proxy gives directly, chunk for chunk.
    options = {"num_predict": 40, "temperature": 0, "seed": 1}
    body = {"model": MODEL, "prompt": "The capital of France is", "options": options}
    async with httpx.AsyncClient(base_url=proxy.url, trust_env=False, timeout=60) as http:
        async with http.stream("POST", "/api/generate", json=body) as direct:
            direct_chunks = [json.loads(line) async for line in direct.aiter_lines() if line]
    # The relay's `ollama` target is the proxy, not the simulator behind it.
    async with over_nkn(node, sim, targets={"ollama": proxy.url}) as nkn:
        async with nkn.client.stream(path="/api/generate", json=body) as s:
            lines = await s.lines()
    chunks = [json.loads(line.line) for line in lines]
    final, content = chunks[-1], chunks[:-1]
    assert final["done"] is True, final
    assert all(chunk["done"] is False for chunk in content)
    assert "".join(chunk["response"] for chunk in content).strip(), content
    assert final["eval_count"] > 0 and final["prompt_eval_count"] > 0, final
    # A real engine may hold a token's text back (half a UTF-8 character) and send it with
    # the next one, so chunks may be fewer than tokens; NKN must add or lose none of them.
    assert [c["response"] for c in content] == [c["response"] for c in direct_chunks[:-1]]
    assert len(content) <= final["eval_count"] == direct_chunks[-1]["eval_count"]
    end = s.result.end
    assert end is not None and end.ok and end.done_seen and end.last_seq == len(lines)
