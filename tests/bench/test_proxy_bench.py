"""`python -m bench.proxy_bench` end to end at toy sizes: every server's column, every goal row.

Performance itself is measured by running the benchmark, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.proxy_bench import ProxyBenchSettings
from farm.settings import SettingsError, load

SERVERS = "uvicorn,granian-asgi,granian-rsgi"


def test_servers_are_a_checked_list() -> None:
    loaded = load(ProxyBenchSettings, ["--server", "uvicorn", "--server", "granian-asgi"], {})
    assert loaded.settings.server == ("uvicorn", "granian-asgi")
    with pytest.raises(SettingsError, match="--server .*unknown server hypercorn"):
        load(ProxyBenchSettings, ["--server", "hypercorn"], {})
    with pytest.raises(SettingsError, match="a server is given twice"):
        load(ProxyBenchSettings, ["--server", "uvicorn,uvicorn"], {})


def test_a_tiny_run_prints_each_path_side_by_side_and_each_servers_goals(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    argv = [sys.executable, "-m", "bench.proxy_bench", "--server", SERVERS, "--no-nginx"]
    argv += ["--streams", "2", "--rounds", "1", "--max-tokens", "2", "--decode-ms", "1"]
    argv += ["--rss-streams", "2", "--blob-mib", "1", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    head = next(line for line in lines if line.lstrip().startswith("streams"))
    assert head.split()[-4:] == ["direct", "uvicorn", "granian-asgi", "granian-rsgi"]
    assert any(line.split()[:3] == ["2", "errors/reqs", "0/2"] for line in lines)
    goal_rows = {line.split()[0]: line for line in lines[lines.index(_goal_head(lines)) + 1 :]}
    for server in SERVERS.split(","):
        # The two memory goals have figures; those against nginx are n/a without it.
        row = goal_rows[server]
        assert row.split().count("n/a") == 3 and row.count(" MB ") == 2
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 2 and doc["config"]["server"] == SERVERS.split(",")
    assert {g["server"] for g in doc["goals"]} == set(SERVERS.split(","))
    assert all(m["upload"]["status"] == 201 for m in doc["memory"].values())
    assert len(doc["rows"]) == 4 * 2 and all(r["error"] is None for r in doc["rows"])


def _goal_head(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("server"))
