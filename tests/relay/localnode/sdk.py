"""Run `sdk_clients.js` (the unmodified nkn-sdk Client and MultiClient) against a node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from relay.bridge.config import BRIDGE_DIR

SCRIPT = Path(__file__).with_name("sdk_clients.js")


def run_sdk_clients(rpc_url: str) -> dict[str, Any]:
    """The script's observations (connect times, replies, ACKs) from the node at `rpc_url`."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to run nkn-sdk")
    env = {**os.environ, "NODE_PATH": str(BRIDGE_DIR / "node_modules")}
    done = subprocess.run(
        [node, str(SCRIPT), rpc_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result
