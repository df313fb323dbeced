"""GPU setup's settings: `--check`, the environment-only root/repository/image, one-line errors,
`--print-config` and argv + environment reproducing the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.gpu.__main__ import main
from farm.gpu.settings import NVIDIA_REPO, GpuSetupSettings
from farm.settings import SettingsError, child_env, load, to_argv


def test_defaults_are_the_real_host_and_nvidias_repository() -> None:
    s = load(GpuSetupSettings, [], {}).settings
    assert (s.check, s.root, s.nvidia_repo) == (False, Path("/"), NVIDIA_REPO)


def test_the_environment_is_honoured(tmp_path: Path) -> None:
    loaded = load(
        GpuSetupSettings,
        ["--check"],
        {
            "FARM_GPU_ROOT": str(tmp_path),
            "FARM_NVIDIA_REPO": "http://mirror.lan/nvidia/",
            "FARM_CUDA_IMAGE": "nvidia/cuda:12.9.0-base-ubuntu24.04",
        },
    )
    s = loaded.settings
    assert s.check and s.root == tmp_path and s.nvidia_repo == "http://mirror.lan/nvidia"
    assert s.cuda_image == "nvidia/cuda:12.9.0-base-ubuntu24.04"
    assert loaded.origins["root"] == "env FARM_GPU_ROOT"


def test_a_root_that_is_not_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SettingsError, match=f"FARM_GPU_ROOT '{missing}': not a directory"):
        load(GpuSetupSettings, [], {"FARM_GPU_ROOT": str(missing)})


def test_print_config_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_GPU_ROOT", str(tmp_path))
    assert main(["--print-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"root        = {tmp_path}  (env FARM_GPU_ROOT)" in out
    assert "check       = false  (default)" in out
    assert list(tmp_path.iterdir()) == []


@given(
    st.builds(
        GpuSetupSettings,
        check=st.booleans(),
        root=st.sampled_from([Path("/"), Path("/tmp")]),
        nvidia_repo=st.sampled_from([NVIDIA_REPO, "http://127.0.0.1:8000/mirror"]),
        cuda_image=st.sampled_from(["nvidia/cuda:12.8.0-base-ubuntu24.04", "reg.lan/cuda:1"]),
    )
)
def test_argv_and_environment_reproduce_the_settings(settings: GpuSetupSettings) -> None:
    assert load(GpuSetupSettings, to_argv(settings), child_env(settings)).settings == settings
