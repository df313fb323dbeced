"""Docker's `/etc/docker/daemon.json`: configured by NVIDIA's `nvidia-ctk`, then verified.

We never hand-write the nvidia runtime entry: `nvidia-ctk runtime configure --runtime=docker
--set-as-default` owns that. The tool re-serialises the whole file and, by code reading, can
replace an existing `features` object (dropping flags such as `containerd-snapshotter`), so the
settings from before are compared with those after and any lost key is merged back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from farm.gpu.apt_repo import under
from farm.gpu.errors import SetupError
from farm.gpu.probe import Item, Runner

log = logging.getLogger(__name__)

DAEMON_JSON = Path("/etc/docker/daemon.json")


def load(path: Path) -> dict[str, Any] | None:
    """The parsed file, None when it is absent; invalid JSON is a SetupError (we won't guess)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SetupError(f"{DAEMON_JSON} is not valid JSON ({exc}); fix it by hand first") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{DAEMON_JSON} must hold a JSON object")
    return data


def is_configured(data: dict[str, Any] | None) -> bool:
    """nvidia is registered as a runtime and set as Docker's default runtime."""
    if not data:
        return False
    runtimes = data.get("runtimes")
    return (
        data.get("default-runtime") == "nvidia"
        and isinstance(runtimes, dict)
        and isinstance(runtimes.get("nvidia"), dict)
        and bool(runtimes["nvidia"].get("path"))
    )


def check(root: Path) -> Item:
    """ok when the runtime entry and default are present."""
    try:
        data = load(under(root, DAEMON_JSON))
    except SetupError as exc:
        return Item("daemon-json", "wrong", str(exc))
    if data is None:
        return Item("daemon-json", "missing", f"{DAEMON_JSON} absent")
    if is_configured(data):
        return Item("daemon-json", "ok", "default-runtime nvidia")
    return Item("daemon-json", "missing", "no nvidia default runtime")


def restore_lost(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Put back keys (top level and inside `features`) that the tool dropped; name them."""
    restored = []
    for key, value in before.items():
        if key not in after:
            after[key] = value
            restored.append(key)
    old_features = before.get("features")
    if isinstance(old_features, dict):
        new_features = after.get("features")
        if not isinstance(new_features, dict):
            new_features = after["features"] = {}
        for key, value in old_features.items():
            if key not in new_features:
                new_features[key] = value
                restored.append(f"features.{key}")
    return restored


def configure(root: Path, run: Runner) -> bool:
    """Run nvidia-ctk if needed and keep every pre-existing setting; True if the file changed."""
    path = under(root, DAEMON_JSON)
    before_raw = path.read_bytes() if path.exists() else None
    before = load(path) or {}
    if is_configured(before):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    res = run(
        [
            "nvidia-ctk",
            "runtime",
            "configure",
            "--runtime=docker",
            "--set-as-default",
            f"--config={path}",
        ],
        60.0,
    )
    if res.rc != 0:
        raise SetupError(f"nvidia-ctk runtime configure failed: {res.text or f'rc {res.rc}'}")
    after = load(path)
    if after is None or not is_configured(after):
        raise SetupError(f"nvidia-ctk ran but {DAEMON_JSON} has no nvidia default runtime")
    restored = restore_lost(before, after)
    if restored:
        log.warning("nvidia-ctk dropped %s from daemon.json; restored", ", ".join(restored))
        # The same layout the tool writes (4-space indent, sorted keys), so a rerun is a no-op.
        path.write_text(json.dumps(after, indent=4, sort_keys=True) + "\n", encoding="utf-8")
    return path.read_bytes() != before_raw
