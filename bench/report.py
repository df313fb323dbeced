"""Reports: one pipeline from a result folder's raw rows to its rendered report.

`build_report` runs each stage once, in order: raw rows (kept as Parquet/CSV) -> summary
tables (`bench.summary`, with the harness self-check) -> plots (`bench.plots`) -> report.md and
a self-contained report.html (`bench.render`). No stage calls back into an earlier one. The
same pipeline serves one folder or several side by side (`python -m bench report DIR DIR…`);
a comparison also gives each metric's change from the first folder a bootstrap CI and marks
the significant ones (`bench.compare`).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench import compare, harness, plots, render, summary
from bench.errors import ReportError
from bench.record import COLUMNS, RequestRecord
from bench.summary import Tables

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Report:
    """What a rendered report holds, for callers that print or test it."""

    out: Path
    tables: Tables
    meta: dict[str, Any]
    plots: tuple[Path, ...] = ()
    #: For a comparison: (first folder, later folder, `bench.compare.compare_runs` table).
    changes: tuple[tuple[str, str, pd.DataFrame], ...] = ()

    @property
    def summary(self) -> pd.DataFrame:
        """One row per target × streams."""
        return self.tables.summary

    @property
    def decomposition(self) -> pd.DataFrame:
        """Median TTFT parts per target × streams."""
        return self.tables.decomposition

    @property
    def errors(self) -> pd.DataFrame:
        """Errors by target × status."""
        return self.tables.errors

    @property
    def paired(self) -> pd.DataFrame:
        """Each target against `direct` on the same prompt ids."""
        return self.tables.paired

    @property
    def nkn(self) -> pd.DataFrame:
        """NKN transport counters per target × streams."""
        return self.tables.nkn

    @property
    def checks(self) -> tuple[harness.HarnessCheck, ...]:
        """The harness self-check of every run."""
        return self.tables.checks


def _read_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    # A process killed mid-write leaves a partial last line; keep the rest.
                    log.warning("%s:%d: skipping a partial line", path, number)
    return out


def load_rows(out: Path) -> pd.DataFrame:
    """All rows of a result folder (from the per-worker JSONL files, else rows.parquet)."""
    files = sorted(out.glob("runs/*/rows-*.jsonl"))
    if files:
        records = [RequestRecord.from_dict(d) for d in _read_jsonl(files)]
        if not records:
            raise ReportError(f"{out}: the runs recorded no requests (see runs/*/locust.log)")
        return pd.DataFrame([asdict(r) for r in records], columns=list(COLUMNS))
    if (out / "rows.parquet").exists():
        return pd.read_parquet(out / "rows.parquet")
    raise ReportError(f"{out}: no rows (neither runs/*/rows-*.jsonl nor rows.parquet)")


def load_health(out: Path) -> pd.DataFrame:
    """Per-second harness health samples of every run in a result folder."""
    frames = []
    for path in sorted(out.glob("runs/*/health-*.jsonl")):
        data = _read_jsonl([path])
        if data:
            frames.append(pd.DataFrame(data).assign(run=path.parent.name))
    if frames:
        return pd.concat(frames, ignore_index=True)
    if (out / "health.csv").exists():
        return pd.read_csv(out / "health.csv")
    return pd.DataFrame(
        columns=["run", "worker_id", "t_unix_s", "cpu_pct", "hub_lag_max_ms", "in_flight"]
    )


def load_meta(out: Path) -> dict[str, Any]:
    """meta.json of a result folder ({} when missing)."""
    path = out / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_rows(rows: pd.DataFrame, out: Path) -> None:
    """rows.parquet (gaps as a list column) and rows.csv (gaps as a JSON array)."""
    rows.to_parquet(out / "rows.parquet", index=False)
    flat = rows.copy()
    flat["token_gaps_s"] = [
        json.dumps(list(g) if g is not None else []) for g in flat["token_gaps_s"]
    ]
    flat.to_csv(out / "rows.csv", index=False)


def write_tables(tables: Tables, health: pd.DataFrame, out: Path) -> None:
    """The summary tables as CSV (and the self-check as JSON) beside the rows."""
    tables.summary.to_csv(out / "summary.csv", index=False)
    tables.decomposition.to_csv(out / "decomposition.csv", index=False)
    tables.errors.to_csv(out / "errors.csv", index=False)
    tables.paired.to_csv(out / "paired.csv", index=False)
    tables.nkn.to_csv(out / "nkn.csv", index=False)
    health.to_csv(out / "health.csv", index=False)
    (out / "harness.json").write_text(
        json.dumps([asdict(c) for c in tables.checks], indent=2), encoding="utf-8"
    )


def build_report(
    rows: pd.DataFrame, health: pd.DataFrame, meta: dict[str, Any], out: Path
) -> Report:
    """Run the pipeline on `rows` and write every file of the report into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, out)
    tables = summary.tables(rows, health, meta.get("config", {}))
    write_tables(tables, health, out)
    plot_paths = plots.all_plots(rows, tables, health, out / "plots")
    (out / "report.md").write_text(render.markdown(tables, meta, plot_paths), encoding="utf-8")
    (out / "report.html").write_text(render.html(tables, meta, plot_paths), encoding="utf-8")
    return Report(out, tables, meta, tuple(plot_paths))


def write_report(out: Path) -> Report:
    """Render (or re-render) the report of one result folder in place."""
    if not out.is_dir():
        raise ReportError(f"{out}: not a result folder")
    return build_report(load_rows(out), load_health(out), load_meta(out), out)


def compare_reports(dirs: list[Path], out: Path) -> Report:
    """One report over several result folders: each target is labelled `<folder>:<target>`,
    and each later folder's change from the first gets bootstrap CIs (`bench.compare`)."""
    rows, healths, own = [], [], []
    for d in dirs:
        if not d.is_dir():
            raise ReportError(f"{d}: not a result folder")
        label = d.name
        r = load_rows(d)
        own.append(r.copy())
        r["target"] = label + ":" + r["target"].astype(str)
        rows.append(r)
        h = load_health(d)
        if len(h):
            h["run"] = label + ":" + h["run"].astype(str)
            healths.append(h)
    meta = {"compared": [str(d) for d in dirs], "config": load_meta(dirs[0]).get("config", {})}
    health = pd.concat(healths, ignore_index=True) if healths else load_health(dirs[0]).iloc[0:0]
    report = build_report(pd.concat(rows, ignore_index=True), health, meta, out)
    changes = tuple(
        (dirs[0].name, d.name, compare.compare_runs(own[0], r))
        for d, r in zip(dirs[1:], own[1:], strict=True)
    )
    write_changes(changes, out)
    return replace(report, changes=changes)


def write_changes(changes: tuple[tuple[str, str, pd.DataFrame], ...], out: Path) -> None:
    """changes.csv, and a "Changes" section at the end of report.md and report.html."""
    if not changes:
        return
    pd.concat(
        [frame.assign(run_a=a, run_b=b) for a, b, frame in changes], ignore_index=True
    ).to_csv(out / "changes.csv", index=False)
    md = "\n".join(
        line for a, b, frame in changes for line in ["", *compare.change_lines(frame, a, b)]
    )
    with (out / "report.md").open("a", encoding="utf-8") as fh:
        fh.write(md + "\n")
    page = (out / "report.html").read_text(encoding="utf-8")
    tables = "".join(
        f"<h2>Changes from {html.escape(a)} to {html.escape(b)} (95% bootstrap CI)</h2>"
        + frame.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        for a, b, frame in changes
    )
    head, sep, tail = page.rpartition("</body>")
    (out / "report.html").write_text(
        head + tables + sep + tail if sep else page + tables, encoding="utf-8"
    )
