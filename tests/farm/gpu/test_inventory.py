"""The NVML inventory and `invoke gpus`: two GPUs (one split by MIG), processes, no driver.

NVML is faked at pynvml's boundary only (`nvml_site/fake_nvml.py`); `invoke gpus` runs as a
user runs it, `python -m invoke gpus` in the checkout, with the fake loaded in the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.gpu.errors import NoNvidiaDriver, NvmlUnavailable
from farm.gpu.inventory import read_inventory, select_gpus

from .conftest import GIB, NVML_SITE, Host
from .nvml_site import fake_nvml

ROOT = Path(__file__).resolve().parents[3]
A100_UUID = "GPU-5d3c2b1a-0f9e-4d8c-b7a6-958473625140"
TWO_GPUS = {
    "driver": "570.86.15",
    "cuda": 12080,
    "gpus": [
        {
            "name": "NVIDIA L40S",
            "uuid": "GPU-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "total": 48 * GIB,
            "free": 40 * GIB,
            "mig": None,
            "processes": [
                {"pid": 4242, "name": "/usr/bin/ollama", "used": 7 * GIB},
                {"pid": 4343, "name": "python3", "used": None},
            ],
        },
        {
            "name": "NVIDIA A100-SXM4-80GB",
            "uuid": A100_UUID,
            "total": 80 * GIB,
            "free": 79 * GIB,
            "mig": 1,
            "mig_devices": [
                {"uuid": "MIG-aaaaaaaa-1111-5222-8333-444444444444", "total": 40 * GIB,
                 "free": 39 * GIB},
                None,
                {"uuid": "MIG-bbbbbbbb-1111-5222-8333-444444444444", "total": 20 * GIB,
                 "free": 20 * GIB},
            ],
        },
    ],
}  # fmt: skip


@pytest.fixture
def nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pynvml's functions faked in this process; returns the host file to write."""
    spec = tmp_path / "nvml.json"
    monkeypatch.setenv(fake_nvml.ENV, str(spec))
    for name, fake in fake_nvml.functions().items():
        monkeypatch.setattr(fake_nvml.pynvml, name, fake)
    return spec


def _invoke(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m invoke ARGS` in the checkout, NVML faked in the service it runs."""
    env = dict(os.environ, PYTHONPATH=str(NVML_SITE), **{fake_nvml.ENV: str(spec)})
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_two_gpus_with_mig_and_processes_are_read_as_nvml_reports_them(nvml: Path) -> None:
    nvml.write_text(json.dumps(TWO_GPUS))
    inv = read_inventory()
    assert (inv.driver_version, inv.cuda_version) == ("570.86.15", "12.8")
    l40s, a100 = inv.gpus
    assert (l40s.index, l40s.name, l40s.total_bytes, l40s.free_bytes) == (
        0, "NVIDIA L40S", 48 * GIB, 40 * GIB,
    )  # fmt: skip
    assert l40s.used_bytes == 8 * GIB and l40s.mig == "n/a" and l40s.mig_devices == ()
    assert [(p.pid, p.name, p.used_bytes) for p in l40s.processes] == [
        (4242, "/usr/bin/ollama", 7 * GIB),
        (4343, "python3", None),
    ]
    assert a100.index == 1 and a100.uuid == A100_UUID and a100.mig == "enabled"
    # The empty MIG slot (NVML answers NotFound) is skipped; the others keep their slot index.
    assert [(m.index, m.uuid[:12], m.total_bytes) for m in a100.mig_devices] == [
        (0, "MIG-aaaaaaaa", 40 * GIB),
        (2, "MIG-bbbbbbbb", 20 * GIB),
    ]
    assert select_gpus(inv, ["1"]) == (a100,) and select_gpus(inv, [A100_UUID, "0"]) == (a100, l40s)
    assert select_gpus(inv, []) == inv.gpus
    with pytest.raises(ValueError, match="no GPU '7' on this host; it has: 0 "):
        select_gpus(inv, ["7"])


@pytest.mark.parametrize(
    ("code", "error", "expected"),
    [
        ("LIBRARY_NOT_FOUND", NoNvidiaDriver, "no NVIDIA driver: NVML (libnvidia-ml.so.1)"),
        ("DRIVER_NOT_LOADED", NvmlUnavailable, "installed but not loaded"),
        ("NO_PERMISSION", NvmlUnavailable, "permissions of /dev/nvidia*"),
        ("LIB_RM_VERSION_MISMATCH", NvmlUnavailable, "reboot after a driver update"),
    ],
    ids=["no-library", "not-loaded", "no-permission", "version-mismatch"],
)
def test_nvml_start_failure_is_one_line_naming_the_fix(
    nvml: Path, code: str, error: type[Exception], expected: str
) -> None:
    nvml.write_text(json.dumps({"error": code}))
    with pytest.raises(error) as caught:
        read_inventory()
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_invoke_gpus_prints_a_table_of_every_gpu_mig_instance_and_process(tmp_path: Path) -> None:
    spec = tmp_path / "nvml.json"
    spec.write_text(json.dumps(TWO_GPUS))
    done = _invoke(spec, "gpus")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "driver 570.86.15, CUDA 12.8, 2 GPUs"
    assert lines[1].split() == ["GPU", "NAME", "UUID", "FREE", "TOTAL", "MIG", "PROCESSES"]
    assert lines[2].split()[:3] == ["0", "NVIDIA", "L40S"] and "40.0 GiB  48.0 GiB" in lines[2]
    assert "  pid 4242 /usr/bin/ollama: 7.0 GiB" in lines
    assert "  pid 4343 python3: ?" in lines
    a100 = next(line for line in lines if A100_UUID in line)
    assert a100.startswith("1 ") and "enabled" in a100
    assert any(line.startswith("  MIG 2: MIG-bbbbbbbb") for line in lines)


def test_invoke_gpus_json_is_the_inventory_in_bytes(tmp_path: Path) -> None:
    spec = tmp_path / "nvml.json"
    spec.write_text(json.dumps(TWO_GPUS))
    done = _invoke(spec, "gpus", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["driver_version"] == "570.86.15" and data["cuda_version"] == "12.8"
    assert [g["uuid"] for g in data["gpus"]] == [g["uuid"] for g in TWO_GPUS["gpus"]]
    assert data["gpus"][0]["free_bytes"] == 40 * GIB
    assert data["gpus"][0]["processes"][1] == {"pid": 4343, "name": "python3", "used_bytes": None}
    assert [m["index"] for m in data["gpus"][1]["mig_devices"]] == [0, 2]


def test_invoke_gpus_without_a_driver_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "nvml.json"
    spec.write_text(json.dumps({"error": "LIBRARY_NOT_FOUND"}))
    for args in (["gpus"], ["gpus", "--json"]):
        done = _invoke(spec, *args)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("python -m farm.gpu gpus: error: no NVIDIA driver")
        assert "invoke up --cpu or --mode sim" in done.stderr


def test_gpu_setup_check_reads_the_driver_from_nvml_not_nvidia_smi(host: Host) -> None:
    host.nvml(TWO_GPUS)
    done = host.run("--check")
    driver = next(line for line in done.stdout.splitlines() if line.split()[1] == "driver")
    assert driver.startswith("ok ")
    assert "0: NVIDIA L40S (40.0 GiB free of 48.0 GiB); 1: NVIDIA A100" in driver
    assert driver.endswith("driver 570.86.15, CUDA 12.8")
    assert not [c for c in host.calls() if c[0] == "nvidia-smi"]
    host.nvml({"error": "LIBRARY_NOT_FOUND"})
    missing = host.run("--check").stdout
    assert "missing  driver          no NVIDIA driver: NVML" in missing
