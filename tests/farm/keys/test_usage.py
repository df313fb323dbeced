"""`invoke usage`: totals per key, model or day, as a table or CSV."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farm.keys.errors import UsageQueryError
from farm.keys.records import UsageRow
from farm.keys.store import KeyStore
from farm.keys.usage import since_epoch, summarise


def test_since_spans() -> None:
    assert since_epoch("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert since_epoch("90s", now=100.0) == 10.0
    with pytest.raises(UsageQueryError, match="span like"):
        since_epoch("yesterday")


def test_summary_groups_and_counts_errors_apart() -> None:
    rows = [
        UsageRow("a", "m1", 10, 100, 0.2, 2.0, 200, 0.0),
        UsageRow("a", "m2", 5, 50, 0.4, 1.0, 200, 0.0),
        UsageRow("b", "m1", 1, 0, None, 0.1, 429, 0.0),
    ]
    by_key = {line.group: line for line in summarise(rows, "key")}
    assert by_key["a"].output_tokens == 150 and by_key["a"].ttft_p50_s == pytest.approx(0.3)
    assert by_key["b"].errors == 1 and by_key["b"].ttft_p50_s is None
    by_model = {line.group: line for line in summarise(rows, "model")}
    assert by_model["m1"].requests == 2


def test_cli_csv_by_model(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "k.db")
    now = time.time()
    store.record(UsageRow("a", "m1", 10, 100, 0.2, 2.0, 200, now))
    store.record(UsageRow("a", "m1", 10, 100, 0.2, 2.0, 200, now - 30 * 86400))  # too old
    store.close()
    out = subprocess.run(
        [sys.executable, "-m", "farm.keys", "usage", "--by", "model", "--csv"],
        env={"FARM_KEYS_DB": str(tmp_path / "k.db"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows == [
        {
            "model": "m1",
            "requests": "1",
            "errors": "0",
            "prompt_tokens": "10",
            "output_tokens": "100",
            "ttft_p50_s": "0.200",
            "busy_s": "2.0",
        }
    ]
