"""`invoke up --mode engine`: the farm's backend is the simulator on its llama.cpp engine.

Real weights stream through the proxy, `status` says what answers, `down` cleans up; a model
the engine does not serve is refused before anything starts.
"""

from __future__ import annotations

import ollama

from farm.sim.engines.llamacpp.weights import default_cache

from .conftest import Farm, free_ports

MODEL = "gemma3-270m-base:q4_k_m"
LABEL = "llama.cpp (real weights: Gemma 3 270M base, CPU)"


def test_engine_farm_streams_real_text_through_the_proxy(farm: Farm) -> None:
    # The sandbox has its own HOME: point it at this machine's assembled weights.
    farm.env["FARM_SIM_WEIGHTS_DIR"] = str(default_cache())
    front, back = free_ports(2)
    up = farm.invoke(
        "up", "--mode", "engine", "--model", MODEL, "--num-parallel", "2", "--ctx", "512",
        "--detach", "--host", "127.0.0.1", "--front-port", str(front), "--back-port", str(back),
        timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert f"mode engine: the backend is the simulator's engine: {LABEL}" in up.stderr
    assert f"pull {MODEL}: success" in up.stderr and "load_duration" in up.stderr

    with ollama.Client(host=f"http://127.0.0.1:{front}") as client:
        stream = client.generate(
            model=MODEL, prompt="The sky is", options={"num_predict": 8}, stream=True
        )
        chunks = list(stream)
    assert chunks[-1].done and chunks[-1].eval_count == 8
    assert "".join(c.response for c in chunks).strip()

    status = farm.invoke("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"mode engine (engine: {LABEL})" in status.stdout
    assert f"loaded: {MODEL}" in status.stdout

    down = farm.invoke("down", timeout=60)
    assert down.returncode == 0, down.stderr
    assert not farm.state_file.exists()


def test_engine_mode_refuses_a_model_it_does_not_serve(farm: Farm) -> None:
    refused = farm.run("up", "--mode", "engine", "--model", "gemma3:4b")
    assert refused.returncode != 0
    assert f"--mode engine serves {MODEL}" in refused.stderr
    assert not farm.state_file.exists()
