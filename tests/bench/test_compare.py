"""`python -m bench report A B`: each metric's change with a bootstrap CI, significant ones
marked, through the real command line on two result folders."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.compare import change_ci, compare_runs
from bench.record import COLUMNS
from bench.report import write_rows

from .rows import make_row


def _run_rows(ttft_s: np.ndarray, gap_s: np.ndarray) -> pd.DataFrame:
    """One measured request per value: 8 tokens, the first after `ttft_s`, then `gap_s` apart."""
    rows = []
    for index, (ttft, gap) in enumerate(zip(ttft_s, gap_s, strict=True)):
        start = 1000.0 + index * 0.01
        end = start + ttft + 7 * gap + 0.001
        rows.append(make_row(start_s=start, ttft_s=ttft, gaps_s=(gap,) * 7, end_s=end, index=index))
    return pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))


def _folder(root: Path, name: str, rows: pd.DataFrame) -> Path:
    folder = root / name
    folder.mkdir()
    write_rows(rows, folder)
    (folder / "meta.json").write_text(json.dumps({"config": {}}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """B's TTFT is 40 % slower; its per-token gaps are drawn from the same distribution."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("runs")
    base_ttft = rng.uniform(0.2, 0.3, 80)
    a = _run_rows(base_ttft, rng.uniform(0.02, 0.03, 80))
    b = _run_rows(rng.uniform(0.2, 0.3, 80) * 1.4, rng.uniform(0.02, 0.03, 80))
    return _folder(root, "before", a), _folder(root, "after", b)


def test_report_a_b_marks_the_regression_and_calls_the_rest_noise(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = runs
    out = tmp_path / "compared"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "report", str(a), str(b), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "## Changes from before to after" in done.stdout
    lines = {
        line.split("|")[3].strip(): line
        for line in done.stdout.splitlines()
        if "| direct |" in line
    }
    assert "**worse**" in lines["ttft_ms_p50"] and "**worse**" in lines["e2e_s_p50"]
    assert lines["tpot_ms_p50"].rstrip().endswith("| noise |")
    assert lines["tpot_ms_p90"].rstrip().endswith("| noise |")
    changes = pd.read_csv(out / "changes.csv")
    ttft = changes[changes["metric"] == "ttft_ms_p50"].iloc[0]
    assert ttft["ci_low_pct"] > 25 and ttft["ci_high_pct"] < 55
    assert "Changes from before to after" in (out / "report.md").read_text(encoding="utf-8")
    assert "Changes from before to after" in (out / "report.html").read_text(encoding="utf-8")


def test_the_interval_covers_the_true_change_and_narrows_with_more_requests() -> None:
    rng = np.random.default_rng(3)
    small = change_ci(rng.exponential(1.0, 40), rng.exponential(1.2, 40), 0.5)
    large = change_ci(rng.exponential(1.0, 4000), rng.exponential(1.2, 4000), 0.5)
    assert small[1] < 0.2 < small[2] and large[1] < 0.2 < large[2]
    assert large[2] - large[1] < (small[2] - small[1]) / 3


def test_faster_tokens_are_better_not_worse() -> None:
    rng = np.random.default_rng(1)
    slow = _run_rows(rng.uniform(0.2, 0.3, 60), rng.uniform(0.04, 0.05, 60))
    fast = _run_rows(rng.uniform(0.2, 0.3, 60), rng.uniform(0.02, 0.025, 60))
    verdicts = compare_runs(slow, fast).set_index("metric")["verdict"]
    assert verdicts["tpot_ms_p50"] == "better" and verdicts["stream_tok_s_p50"] == "better"
