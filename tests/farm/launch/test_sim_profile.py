"""`invoke up --mode sim --profile FILE`: the farm's simulator runs the profile's timing."""

from __future__ import annotations

from pathlib import Path

import ollama

from farm.sim.profile import Profile, write_profile

from .conftest import Farm, free_ports


def test_the_sim_backend_runs_the_profile_timing(farm: Farm, tmp_path: Path) -> None:
    """A profile with 60 ms decode steps (the default is 25): the official client, through
    the proxy, sees every token take at least that long."""
    profile = tmp_path / "slow.toml"
    write_profile(profile, Profile({"load_ms": 50.0, "decode_ms": 60.0, "jitter": 0.0}))
    front, back = free_ports(2)
    up = farm.invoke(
        "up", "--mode", "sim", "--model", "gemma3:4b", "--num-parallel", "2", "--detach",
        "--host", "127.0.0.1", "--front-port", str(front), "--back-port", str(back),
        "--profile", str(profile),
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        with ollama.Client(host=f"http://127.0.0.1:{front}") as client:
            reply = client.generate(model="gemma3:4b", prompt="hi", options={"num_predict": 5})
        assert reply.eval_count == 5
        assert reply.eval_duration is not None and reply.eval_duration >= 5 * 60e6
    finally:
        farm.invoke("down")


def test_a_profile_outside_sim_mode_is_one_line(farm: Farm, tmp_path: Path) -> None:
    done = farm.run("up", "--mode", "docker", "--model", "gemma3:4b", "--profile", "x.toml")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "python -m farm up: error: --profile sets the simulator's timing: use it with --mode sim"
    ]


def test_an_unreadable_profile_is_one_line(farm: Farm, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    done = farm.run("up", "--mode", "sim", "--model", "gemma3:4b", "--profile", str(missing))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"--profile {missing}: cannot read it" in done.stderr
