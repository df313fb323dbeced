"""`--gpus per-gpu` for a local `ollama serve`: one server per GPU, pinned by UUID through
CUDA_VISIBLE_DEVICES, all on one models store (pulled once, warmed on each), one proxy."""

from __future__ import annotations

import json

import httpx

from .conftest import Farm, free_run
from .docker.conftest import FAKE_NVML, TWO_GPUS


def test_per_gpu_starts_one_pinned_ollama_serve_per_gpu_behind_one_proxy(farm: Farm) -> None:
    farm.install_ollama()
    farm.env.update(PYTHONPATH=str(FAKE_NVML), FAKE_NVML_GPUS=json.dumps(TWO_GPUS))
    front, back = free_run(2)
    models = farm.cwd / "store"
    done = farm.run(
        "up", "--mode", "local", "--model", "gemma3:4b", "--gpus", "per-gpu",
        "--models-dir", str(models), "--host", "127.0.0.1",
        "--front-port", str(front), "--back-port", str(back), "--detach",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    serve = [c for c in farm.ollama_calls() if c["argv"] == ["serve"]]
    # Both servers start at once, so their calls are logged in either order.
    pinned = {c["env"]["OLLAMA_HOST"]: c["cuda"] for c in serve}
    assert pinned == {f"127.0.0.1:{back + i}": g["uuid"] for i, g in enumerate(TWO_GPUS)}
    assert {c["env"]["OLLAMA_MODELS"] for c in serve} == {str(models / "models")}
    # One store: pulled once. (The simulator ships gemma3:4b in every fresh store, so the second
    # server can warm it even though, unlike Ollama, it does not re-read a store it shares.)
    assert done.stderr.count("pull gemma3:4b: success") == 1
    assert done.stderr.count("warm-up gemma3:4b on") == 2  # ... and warmed on each server

    health = httpx.get(f"http://127.0.0.1:{front}/_health", trust_env=False, timeout=5).json()
    labels = [b["label"] for b in health["backends"]]
    assert labels == [f"localhost gpu{i} {g['uuid']} {g['name']}" for i, g in enumerate(TWO_GPUS)]
    status = farm.run("status")
    assert (
        f"backend 2: process http://127.0.0.1:{back + 1} [gpu1 {TWO_GPUS[1]['uuid']}"
        in status.stdout
    )
    assert farm.run("down").returncode == 0
