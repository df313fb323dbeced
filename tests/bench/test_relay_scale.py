"""`python -m bench.relay_scale` at a tiny size: its table, and lines lost under injected loss.

The real CLI runs the simulator, the proxy, the local NKN node (dropping 30% of the messages
each way in the second run), the relay process and two peers on the seed path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from bench.scale_rig import PATHS
from bench.scale_settings import PATH_NAMES, RelayScaleSettings
from bench.scale_table import COLUMNS
from farm.settings import SettingsError, load

TOKENS = 12


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("relay_scale")
    argv = [
        "--levels", "2x2", "--paths", "seed", "--loss", "0,0.3", "--rounds", "2",
        "--max-tokens", str(TOKENS), "--decode-ms", "5", "--idle-timeout-s", "3",
        "--out-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost,::1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay_scale", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (result,) = [p for p in out.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (result / "rows.jsonl").read_text().splitlines()]
    summary = json.loads((result / "summary.json").read_text())["summary"]
    return {"stdout": done.stdout, "rows": rows, "summary": summary}


def _table(stdout: str) -> list[dict[str, str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def test_the_table_has_every_column_and_a_line_per_loss(run: dict[str, Any]) -> None:
    table = _table(run["stdout"])
    assert list(table[0]) == COLUMNS
    assert [(t["path"], t["streams"], t["peers"], t["loss"]) for t in table] == [
        ("seed", "2", "2", "0"),
        ("seed", "2", "2", "0.3"),
    ]
    assert float(table[0]["msgs/100 lines"]) > 0 and float(table[0]["B/line"]) > 0


def test_direct_streams_show_how_many_lines_each_answer_has(run: dict[str, Any]) -> None:
    direct = [r for r in run["rows"] if r["path"] == "direct"]
    assert direct and all(r["lines"] == r["lines_expected"] == TOKENS + 1 for r in direct)


def test_without_loss_nothing_is_lost(run: dict[str, Any]) -> None:
    clean = run["summary"][0]
    assert (clean["loss"], clean["lost"], clean["reported"], clean["errors"]) == (0.0, 0, 0, 0)
    assert clean["dropped_by_node"] == 0


def test_with_loss_lost_lines_are_the_lines_not_received(run: dict[str, Any]) -> None:
    lossy = run["summary"][1]
    rows = [r for r in run["rows"] if r["path"] == "seed" and r["loss"] == 0.3]
    assert lossy["dropped_by_node"] > 0 and lossy["lost"] > 0
    assert lossy["lost"] == sum(r["lines_expected"] - r["lines"] for r in rows)
    for row in rows:
        assert row["lines"] + row["lines_lost"] == TOKENS + 1
        # The seed path tells its peer exactly what it lost, whenever the end frame came.
        if row["reported_lost"] is not None:
            assert row["reported_lost"] == row["lines_lost"]
    assert lossy["reported"] == sum(r["reported_lost"] or 0 for r in rows)
    assert lossy["dup"] == 0


def test_every_path_name_has_its_client_keywords() -> None:
    assert tuple(PATHS) == PATH_NAMES


@pytest.mark.parametrize(
    ("argv", "levels"),
    [
        (["--levels", "1,9,256x32"], ("1", "9", "256x32")),
        (["--levels", "4X1", "--levels", "8x2"], ("4", "8x2")),
    ],
    ids=["csv", "repeated"],
)
def test_levels_read_as_streams_and_peers(argv: list[str], levels: tuple[str, ...]) -> None:
    settings = load(RelayScaleSettings, argv, {}).settings
    assert settings.levels == levels


@pytest.mark.parametrize(
    "argv",
    [["--levels", "2x3"], ["--levels", "9,9"], ["--paths", "tcp"], ["--loss", "1"]],
    ids=["more-peers-than-streams", "twice", "unknown-path", "loss-of-one"],
)
def test_bad_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SettingsError):
        load(RelayScaleSettings, argv, {})
