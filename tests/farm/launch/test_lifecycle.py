"""`up` in-process: a signal at the worst moment still tears everything down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.launch import lifecycle, state
from farm.launch.children import find
from farm.launch.settings import UpSettings

from .conftest import free_ports, port_is_free


def test_a_signal_right_after_the_state_is_saved_still_tears_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: an interrupt once the state file was written left the file behind, and one
    a moment later (before supervision began) skipped the teardown altogether."""
    saved: list[state.FarmState] = []
    real_save = state.save

    def save_then_interrupt(state_dir: Path, record: state.FarmState) -> None:
        real_save(state_dir, record)
        saved.append(record)
        raise KeyboardInterrupt  # what the SIGTERM handler raises

    monkeypatch.setattr(state, "save", save_then_interrupt)
    front, back = free_ports(2)
    config = UpSettings(
        model="gemma3:4b",
        mode="sim",
        pull=False,
        host="127.0.0.1",
        front_port=front,
        back_port=back,
        state_dir=tmp_path / ".farm",
    )
    with pytest.raises(KeyboardInterrupt):
        lifecycle.up(config, tmp_path, {**os.environ, "FARM_SIM_LOAD_MS": "20"})
    [record] = saved
    assert find(record.proxy_pid, record.proxy_create_time) is None
    assert find(record.backends[0].pid, record.backends[0].pid_create_time) is None
    assert not state.path_of(config.state_dir).exists()
    assert port_is_free(front) and port_is_free(back)
