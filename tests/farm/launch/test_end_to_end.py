"""End to end through the operator verbs: `invoke up --mode sim --detach`, the official ollama
client streams through the front port, `invoke status` shows the slots and the loaded model,
`invoke down` leaves nothing running."""

from __future__ import annotations

import ollama
import psutil

from farm.sim.child import SimServer

from .conftest import Farm, free_ports, port_is_free


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sim_farm_streams_through_the_proxy_and_down_cleans_up(farm: Farm) -> None:
    front, back = free_ports(2)
    up = farm.invoke(
        "up", "--mode", "sim", "--model", "gemma3:4b", "--num-parallel", "4", "--detach",
        "--host", "127.0.0.1", "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "SIMULATOR" in up.stderr and "pull gemma3:4b: success" in up.stderr
    assert "load_duration" in up.stderr and "OLLAMA_NUM_GPU_LAYERS" in up.stderr
    state = farm.state()
    pids = [state["proxy_pid"], state["backends"][0]["pid"]]

    with ollama.Client(host=f"http://127.0.0.1:{front}") as client:
        chunks = list(client.generate(model="gemma3:4b", prompt="Say hello", stream=True))
    assert len(chunks) > 1 and chunks[-1].done and chunks[-1].eval_count
    assert "".join(c.response for c in chunks).strip()

    status = farm.invoke("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "mode sim (SIMULATOR: synthetic)" in status.stdout
    assert "slots: 4 per backend" in status.stdout
    assert f"backend 1: sim http://127.0.0.1:{back}" in status.stdout
    assert "loaded: gemma3:4b" in status.stdout

    again = farm.run("up", "--mode", "sim", "--model", "gemma3:4b", "--detach")
    assert again.returncode == 1 and "already running" in again.stderr

    down = farm.invoke("down")
    assert down.returncode == 0, down.stderr
    assert not any(_running(pid) for pid in pids)
    assert port_is_free(front) and port_is_free(back)
    assert not farm.state_file.exists()
    assert farm.run("status").stdout.startswith("no farm is running")


def test_replicas_get_consecutive_back_ports_and_each_warms_the_model(farm: Farm) -> None:
    front, back = free_ports(2)
    while not (port_is_free(back + 1) and back + 1 != front):
        front, back = free_ports(2)
    up = farm.run(
        "up", "--mode", "sim", "--model", "gemma3:4b", "--replicas", "2", "--no-pull",
        "--detach", "--host", "127.0.0.1", "--front-port", str(front), "--back-port", str(back),
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "each replica loads its own copy of the weights" in up.stderr
    urls = [b["url"] for b in farm.state()["backends"]]
    assert urls == [f"http://127.0.0.1:{back}", f"http://127.0.0.1:{back + 1}"]
    status = farm.run("status").stdout
    assert status.count("loaded: gemma3:4b") == 2


def test_backend_url_is_fronted_but_never_stopped(farm: Farm) -> None:
    front = free_ports(1)[0]
    with SimServer(env={"FARM_SIM_LOAD_MS": "20"}) as sim:
        up = farm.run(
            "up", "--backend-url", sim.url, "--model", "gemma3:4b", "--no-pull", "--detach",
            "--host", "127.0.0.1", "--front-port", str(front),
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert farm.state()["mode"] == "external"
        assert f"backend 1: external {sim.url}" in farm.run("status").stdout
        assert farm.run("down").returncode == 0
        assert sim.state()["models"]["gemma3:4b"]["loaded"]  # still running, still warm
    assert port_is_free(front)
