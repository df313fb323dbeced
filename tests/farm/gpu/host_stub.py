"""A recording stand-in for nvidia-smi, docker, systemctl, apt-get and nvidia-ctk.

Copied into a temporary bin directory under each command's name. Every call is appended to
$STUB_LOG as one JSON line; behaviour depends on flag files in $STUB_STATE, so a test can model
a missing driver, a stopped Docker or an nvidia-ctk that drops `features`. apt-get's install
"installs" the toolkit by placing nvidia-ctk on PATH; a docker restart loads the GPU driver only
if the toolkit is present at that moment, as dockerd does.
"""

import json
import os
import sys
from pathlib import Path

NAME = Path(sys.argv[0]).name
ARGS = sys.argv[1:]
STATE = Path(os.environ["STUB_STATE"])
ROOT = Path(os.environ["STUB_ROOT"])
BIN = Path(sys.argv[0]).parent
GPU_LINE = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0000)"


def flag(name):
    return (STATE / name).exists()


def out(text, rc=0, err=False):
    print(text, file=sys.stderr if err else sys.stdout)
    sys.exit(rc)


with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"cmd": NAME, "argv": ARGS}) + "\n")

if NAME == "nvidia-smi":
    if flag("no-driver"):
        out("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", 9)
    if "-L" in ARGS:
        out(GPU_LINE)
    out("NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB")

if NAME == "docker":
    if ARGS[:1] == ["--version"]:
        out("Docker version 27.3.1, build ce12230")
    if ARGS[:1] == ["info"]:
        runtimes = {"runc": {"path": "runc"}}
        if flag("dockerd-has-nvidia"):
            runtimes["nvidia"] = {"path": "nvidia-container-runtime"}
        out(json.dumps(runtimes))
    if ARGS[:1] == ["run"]:
        if flag("dockerd-gpu"):
            out(GPU_LINE)
        msg = 'docker: Error response from daemon: could not select device driver "" with '
        out(msg + "capabilities: [[gpu]].", 125, err=True)
    out(f"docker stub: unexpected {ARGS}", 2, err=True)

if NAME == "systemctl":
    if ARGS == ["is-active", "docker"]:
        if flag("docker-stopped"):
            out("inactive", 3)
        out("active")
    if ARGS == ["restart", "docker"]:
        if (BIN / "nvidia-ctk").exists():
            (STATE / "dockerd-gpu").touch()
        daemon = ROOT / "etc/docker/daemon.json"
        if daemon.exists() and "nvidia" in json.loads(daemon.read_text()).get("runtimes", {}):
            (STATE / "dockerd-has-nvidia").touch()
        sys.exit(0)
    out(f"systemctl stub: unexpected {ARGS}", 2, err=True)

if NAME == "apt-get":
    if ARGS == ["update"]:
        lst = ROOT / "etc/apt/sources.list.d/nvidia-container-toolkit.list"
        if not lst.exists() or "signed-by=" not in lst.read_text():
            out("E: The repository is not signed.", 100, err=True)
        sys.exit(0)
    if ARGS == ["install", "-y", "nvidia-container-toolkit"]:
        (BIN / "nvidia-ctk").symlink_to(BIN / "nvidia-smi")
        sys.exit(0)
    out(f"apt-get stub: unexpected {ARGS}", 100, err=True)

if NAME == "nvidia-ctk":
    if ARGS == ["--version"]:
        out("NVIDIA Container Toolkit CLI version 1.20.0")
    if ARGS[:4] == ["runtime", "configure", "--runtime=docker", "--set-as-default"]:
        path = Path(ARGS[4].split("=", 1)[1])
        data = json.loads(path.read_text()) if path.exists() and path.read_text() else {}
        data.setdefault("runtimes", {})["nvidia"] = {"args": [], "path": "nvidia-container-runtime"}
        data["default-runtime"] = "nvidia"
        if flag("ctk-drops-features"):
            data.pop("features", None)
        path.write_text(json.dumps(data, indent=4, sort_keys=True))
        sys.exit(0)
    out(f"nvidia-ctk stub: unexpected {ARGS}", 2, err=True)

out(f"stub: unknown command {NAME}", 2, err=True)
