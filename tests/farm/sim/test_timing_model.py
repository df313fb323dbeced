"""The timing model's extensions: default unchanged, curve, non-linear growth, shared prefill."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anyio
import httpx
import ollama
import pytest

from farm.sim.child import SimServer
from farm.sim.curve import curve_ms, format_curve, parse_curve
from farm.sim.profile import Profile, write_profile
from farm.sim.settings import SimSettings
from farm.sim.timing import TimingParams

MODEL = "gemma3:4b"


@pytest.mark.parametrize("slots", [1, 2, 3, 8], ids=lambda n: f"{n}-slots")
def test_the_default_model_is_the_linear_one(slots: int) -> None:
    settings = SimSettings()
    params = TimingParams.from_settings(settings)
    linear = settings.decode_ms * (1 + settings.batch_slowdown * (slots - 1)) / 1000
    assert params.step_s(slots) == pytest.approx(linear, rel=1e-12)
    assert params.prefill_s(100, together=slots) == pytest.approx(0.05, rel=1e-12)
    assert params.load_s() == 1.5


def test_the_exponent_bends_the_growth() -> None:
    params = TimingParams.from_settings(
        SimSettings(decode_ms=20, batch_slowdown=0.5, batch_exponent=2)
    )
    assert [round(params.step_s(n) * 1000, 6) for n in (1, 2, 3)] == [20.0, 30.0, 60.0]


def test_shared_prefill_scales_with_prompts_together() -> None:
    params = TimingParams.from_settings(
        SimSettings(prefill_base_ms=10, prefill_ms_per_token=1, prefill_shared=0.5)
    )
    assert params.prefill_s(90) == pytest.approx(0.1)
    assert params.prefill_s(90, together=5) == pytest.approx(0.3)
    assert params.answer_s(90, 3, active_slots=1) == pytest.approx(0.1 + 3 * 0.025)


def test_prompts_and_decoding_slots_slow_each_other() -> None:
    params = TimingParams.from_settings(
        SimSettings(
            decode_ms=10,
            batch_slowdown=0,
            prefill_ms_per_token=1,
            prefill_decode_shared=0.5,
            decode_prefill_stall=3,
        )
    )
    assert params.prefill_s(100, decoding=2) == pytest.approx(0.2)
    assert params.step_s(2, evaluating=1) == pytest.approx(0.04)
    assert params.ttft_s(100, 1, decoding=0) == pytest.approx(0.11)


@pytest.mark.parametrize(
    ("slots", "expected_ms"),
    [(1, 22.9), (2, 43.3), (3, 54.1), (4, 64.9), (6, 86.5), (0, 2.5)],
    ids=["point", "point-2", "between", "last", "past-the-end", "before-the-start"],
)
def test_a_curve_is_piecewise_linear(slots: int, expected_ms: float) -> None:
    curve = parse_curve("4:64.9, 1:22.9,2:43.3")
    assert curve_ms(curve, slots) == pytest.approx(expected_ms)
    assert format_curve(curve) == "1:22.9,2:43.3,4:64.9"


def test_a_curve_replaces_the_formula() -> None:
    params = TimingParams.from_settings(SimSettings(decode_curve="1:10,3:30"))
    assert params.step_s(2) == pytest.approx(0.02)
    assert TimingParams.from_settings(SimSettings(decode_curve="5:7")).step_s(9) == 0.007


@pytest.mark.parametrize(
    "text", ["1", "0:5", "2:-1", "1:2,1:3", "a:b"], ids=["no-ms", "zero", "neg", "twice", "text"]
)
def test_a_bad_curve_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SLOTS|twice"):
        SimSettings(decode_curve=text)


def _prompt_eval_s(url: str, count: int) -> list[float]:
    """`count` requests started together; each one's server-side prompt evaluation time."""
    out: list[float] = []

    async def one(client: httpx.AsyncClient, index: int) -> None:
        body = {"model": MODEL, "prompt": f"p{index} " + "word " * 60, "stream": False}
        body["options"] = {"num_predict": 1}
        reply = (await client.post("/api/generate", json=body)).json()
        out.append(reply["prompt_eval_duration"] / 1e9)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
            await one(client, -1)  # the load
            out.clear()
            async with anyio.create_task_group() as group:
                for index in range(count):
                    group.start_soon(one, client, index)

    anyio.run(main)
    return out


@pytest.mark.parametrize(("shared", "low", "high"), [(0.0, 0.9, 1.6), (1.0, 3.0, 4.8)])
def test_prompts_evaluated_together_share_the_compute(
    shared: float, low: float, high: float
) -> None:
    """Four prompts at once: independent (shared 0) each take one prompt's time; one compute
    split four ways (shared 1) makes the mean about 3.25 times one (the first done after 4,
    the last after 4, with jitter 0 all after 4 - minus the moment the arrivals differ)."""
    flags = {"load_ms": 0, "prefill_ms_per_token": 1.0, "decode_ms": 1, "prefill_shared": shared}
    with SimServer(num_parallel=4, **flags) as sim:
        lone = _prompt_eval_s(sim.url, 1)[0]
        together = _prompt_eval_s(sim.url, 4)
    ratio = sum(together) / len(together) / lone
    assert low < ratio < high, (lone, together)


def test_a_simulator_started_with_a_profile_runs_its_timing(tmp_path: Path) -> None:
    """The official client sees the profile's load time in `load_duration`."""
    path = tmp_path / "slow-load.toml"
    write_profile(path, Profile({"load_ms": 400.0, "decode_ms": 1.0, "jitter": 0.0}))
    with SimServer(profile=path) as sim, ollama.Client(host=sim.url) as client:
        reply = client.generate(model=MODEL, prompt="hi", options={"num_predict": 2})
    assert reply.load_duration is not None and reply.load_duration >= 400e6
    assert reply.load_duration < 1500e6  # the default load time is 1500 ms


def _decoder_eval_s(url: str) -> float:
    """A 40-token answer, and a long prompt sent once it decodes: the answer's eval time."""

    async def main() -> float:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
            await client.post("/api/generate", json={"model": MODEL, "prompt": "warm"})
            body = {"model": MODEL, "prompt": "decoder", "options": {"num_predict": 40}}
            long = {"model": MODEL, "prompt": "word " * 300, "options": {"num_predict": 1}}
            async with client.stream("POST", "/api/generate", json=body) as answer:
                lines = answer.aiter_lines()
                await anext(lines)  # the first token: it decodes now
                newcomer = asyncio.ensure_future(client.post("/api/generate", json=long))
                final = [json.loads(line) async for line in lines][-1]
            await newcomer
            return float(final["eval_duration"]) / 1e9

    return anyio.run(main)


@pytest.mark.parametrize(("stall", "low", "high"), [(0.0, 0.0, 0.15), (3.0, 0.15, 0.6)])
def test_a_prompt_evaluated_meanwhile_stalls_the_decoding_slots(
    stall: float, low: float, high: float
) -> None:
    """40 steps of 5 ms take 0.2 s; a 0.3 s prompt evaluated meanwhile stretches them by
    about 0.3 * 3 / 4 with --decode-prefill-stall 3, and not at all without."""
    flags = {"load_ms": 0, "decode_ms": 5, "batch_slowdown": 0, "prefill_ms_per_token": 1.0}
    with SimServer(num_parallel=2, decode_prefill_stall=stall, **flags) as sim:
        extra = _decoder_eval_s(sim.url) - 40 * 0.005
    assert low <= extra < high
