"""The tune's report: tables, raw rows (Parquet), tune.json, report.md, report.html, plots.

Written from the result folder's level folders and the `TuneResult`, however the tune ended,
so an interrupted tune's report holds every level it finished.
"""

from __future__ import annotations

import base64
import html as htmllib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.record import SCHEMA_VERSION
from bench.render import md_table
from bench.tune import plots
from bench.tune.outcome import TuneResult
from bench.tune.probe import read_rows
from bench.tune.twin import comparison

LEVEL_COLUMNS = [
    "num_parallel", "users", "passed", "clear", "ok", "failed", "ttft_p95_ms", "ttft_ci_ms",
    "tpot_p95_ms", "tpot_ci_ms", "agg_tok_s", "per_user_tok_s", "goodput_req_s", "elapsed_s",
]  # fmt: skip
CANDIDATE_COLUMNS = ["num_parallel", "capacity_users", "ci_95", "levels", "complete", "agg_tok_s"]


def _ci(lo: float, hi: float) -> str:
    if math.isnan(lo) or lo > 1e6:
        return "–"
    return f"{lo * 1000:.0f}-{hi * 1000:.0f}" if hi < 1e6 else f"{lo * 1000:.0f}-failed"


def levels_table(result: TuneResult) -> pd.DataFrame:
    """One row per measured level, in the order measured, with display columns in ms."""
    rows = [lv.row() for c in result.candidates for lv in c.levels]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["ttft_p95_ms"] = frame["ttft_p95_s"] * 1000
    frame["tpot_p95_ms"] = frame["tpot_p95_s"] * 1000
    frame["ttft_ci_ms"] = [
        _ci(a, b) for a, b in zip(frame["ttft_p95_lo_s"], frame["ttft_p95_hi_s"], strict=True)
    ]
    frame["tpot_ci_ms"] = [
        _ci(a, b) for a, b in zip(frame["tpot_p95_lo_s"], frame["tpot_p95_hi_s"], strict=True)
    ]
    return frame


def candidates_table(result: TuneResult) -> pd.DataFrame:
    """One row per NUM_PARALLEL candidate: capacity, its CI, levels measured."""
    out = []
    for c in result.candidates:
        level = c.at(c.capacity.users)
        out.append(
            {
                "num_parallel": c.num_parallel,
                "capacity_users": f"{'≥' if c.capacity.at_least else ''}{c.capacity.users}",
                "ci_95": f"{c.capacity.lo}-{c.capacity.hi}",
                "levels": len(c.levels),
                "complete": c.complete,
                "agg_tok_s": level.agg_tok_s if level else float("nan"),
            }
        )
    return pd.DataFrame(out, columns=CANDIDATE_COLUMNS)


def all_rows(out: Path) -> pd.DataFrame:
    """Every raw request row of the tune, labelled with its NUM_PARALLEL and user count."""
    frames = []
    for folder in sorted((out / "levels").glob("np*-u*")):
        rows = read_rows(folder)
        if rows.empty:
            continue
        num_parallel, users = folder.name.removeprefix("np").split("-u")
        frames.append(rows.assign(num_parallel=int(num_parallel), users=int(users)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _document(result: TuneResult, levels: pd.DataFrame) -> dict[str, Any]:
    best = result.best
    return {
        "schema_version": SCHEMA_VERSION,
        "config": result.config.record(),
        "headline": result.headline,
        "chosen_num_parallel": best.num_parallel if best else None,
        "stopped": result.stopped,
        "candidates": [
            {
                "num_parallel": c.num_parallel,
                "capacity_users": c.capacity.users,
                "capacity_ci_95": [c.capacity.lo, c.capacity.hi],
                "capacity_at_least": c.capacity.at_least,
                "complete": c.complete,
            }
            for c in result.candidates
        ],
        "levels": json.loads(levels.to_json(orient="records")) if len(levels) else [],
    }


def _lines(result: TuneResult) -> list[str]:
    lines = [f"**{result.headline}**", ""]
    lines += [f"- {result.line(c)}" for c in result.candidates if c is not result.best]
    if result.stopped:
        lines.append(f"- **stopped: {result.stopped}**")
    if result.twin is not None:
        lines.append(
            f"- twin (profile {result.config.twin}; its report in twin/): {result.twin.headline}"
        )
        lines += [f"- twin vs real: {line}" for line in comparison(result.twin, result)]
    lines.append(f"- backend mode: {result.config.mode}; model {result.config.model}")
    if result.config.mode == "sim":
        lines.append("- **backend: the Ollama simulator (synthetic numbers, no model ran)**")
    lines.append(
        "- a level clearly passes when both p95s' 95% bootstrap CIs are within the SLOs, "
        "clearly fails when a CI is above; failed requests count as violations; "
        "goodput = answers meeting both SLOs per second"
    )
    return lines


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:13px}"
    "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _html(result: TuneResult, cands: pd.DataFrame, levels: pd.DataFrame, pngs: list[Path]) -> str:
    def table(frame: pd.DataFrame, cols: list[str]) -> str:
        if frame.empty:
            return "<p><em>none</em></p>"
        text: str = frame[[c for c in cols if c in frame]].to_html(
            index=False, border=0, na_rep="–", float_format=lambda v: f"{v:.4g}"
        )
        return text

    items = "".join(
        f"<li>{htmllib.escape(line.removeprefix('- ').replace('**', ''))}</li>"
        for line in _lines(result)[2:]
    )
    images = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{_b64(p)}">'
        f"<figcaption>{p.stem}</figcaption></figure>"
        for p in pngs
    )
    head = htmllib.escape(result.headline)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ollama-farm tune</title>"
        f"<style>{_STYLE}</style></head><body><h1>ollama-farm tune</h1>"
        f"<p><strong>{head}</strong></p><ul>{items}</ul>"
        f"<h2>Candidates</h2>{table(cands, CANDIDATE_COLUMNS)}"
        f"<h2>Levels</h2>{table(levels, [*LEVEL_COLUMNS, 'why'])}"
        f"<h2>Plots</h2>{images}</body></html>"
    )


def write(result: TuneResult) -> TuneResult:
    """Write every file of the tune's report into `result.out`; returns `result`."""
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    rows = all_rows(out)
    if not rows.empty:
        rows.to_parquet(out / "rows.parquet", index=False)
    levels = levels_table(result)
    cands = candidates_table(result)
    levels.to_csv(out / "levels.csv", index=False)
    (out / "tune.json").write_text(
        json.dumps(_document(result, levels), indent=2), encoding="utf-8"
    )
    pngs = plots.all_plots(levels, result, out / "plots")
    md = ["# ollama-farm tune", "", *_lines(result), "", "## Candidates", "", md_table(cands)]
    md += ["## Levels (in the order measured)", "", md_table(levels, [*LEVEL_COLUMNS, "why"])]
    md += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in pngs] + [""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    (out / "report.html").write_text(_html(result, cands, levels, pngs), encoding="utf-8")
    return result
