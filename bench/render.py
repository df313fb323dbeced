"""Rendering: the summary tables and plots of a report as report.md and as a self-contained
report.html (plots inlined). The last stage of `bench.report.build_report`: it reads the
tables it is given and never computes one."""

from __future__ import annotations

import base64
import html as htmllib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.harness import HarnessCheck
from bench.summary import Tables

SUMMARY_COLUMNS = [
    "target", "streams", "achieved_streams", "ok", "errors", "cut", "incomplete", "req_per_s",
    "agg_tok_s", "peak_tok_s", "stream_tok_s_p50", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
    "itl_ms_p50", "itl_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "e2e_s_p50", "e2e_s_p99",
    "icg_max_ms", "goodput_req_s", "good_fraction",
]  # fmt: skip
TOKEN_COLUMNS = [
    "target",
    "streams",
    "token_mismatch",
    "tokens_per_chunk",
    "srv_decode_tok_s_p50",
    "srv_ttft_ms_p50",
    "first_token_lag_ms_p50",
]
FORMULAS = [
    ("ttft", "first chunk with non-empty text − request sent (headline TTFT)"),
    ("itl", "every gap between consecutive text-bearing chunks, pooled over requests"),
    ("tpot", "(last token − first token) / (eval_count − 1), per request"),
    ("stream_tok_s", "1 / tpot: tokens per second one stream sees, TTFT excluded"),
    ("agg_tok_s", "chunks arriving inside the steady window / window length"),
    ("achieved_streams", "time-weighted mean of requests in flight over the window"),
    ("goodput_req_s", "ok requests meeting every SLO / window; good_fraction counts failures too"),
    ("srv_wait", "total − load − prompt_eval − eval (Ollama: slot wait + templating)"),
    ("transport_ttft", "client TTFT − (load + wait + prefill + one decode step)"),
    ("first_token_lag", "first token's wall-clock arrival − its created_at (same host only)"),
]
_N_STABLE_P99 = 1000


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    if value is None:
        return "–"
    return str(value)


def md_table(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A GitHub-style Markdown table of `frame` (selected `columns`)."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    if frame.empty:
        return "_none_\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame[cols].iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def verdict_lines(checks: Sequence[HarnessCheck]) -> list[str]:
    """The harness verdict, one line per run; client-bound runs in bold with the advice."""
    lines = []
    for c in checks:
        numbers = (
            f"worker CPU max {_fmt(c.cpu_pct_max)} %, hub lag typical/worst "
            f"{_fmt(c.hub_lag_p50_ms)}/{_fmt(c.hub_lag_p99_ms)} ms, "
            f"send lag p99 {_fmt(c.send_lag_p99_ms)} ms, "
            f"streams {_fmt(c.achieved_streams)}/{c.streams}"
        )
        if c.short_run:
            lines.append(f"**{c.target}×{c.streams}: {c.short_run}.** ({numbers})")
        if c.client_bound:
            why = "; ".join(c.reasons)
            if c.advice.startswith("the machine is busy"):
                lead = "the measurement was disturbed"
                cost = "latencies include waiting for a CPU"
            else:
                lead = "the load generator is the bottleneck"
                cost = "these numbers understate the farm"
            lines.append(
                f"**{c.target}×{c.streams}: {lead} ({why}); {cost} — {c.advice}.** ({numbers})"
            )
        elif not c.short_run:
            lines.append(f"{c.target}×{c.streams}: harness OK ({numbers})")
    return lines


def _header(tables: Tables, meta: Mapping[str, Any]) -> list[str]:
    cfg = meta.get("config", {})
    models = sorted({str(t.get("model")) for t in meta.get("targets", [])})
    lines = [
        "# ollama-farm benchmark",
        "",
        f"- command: `{' '.join(meta.get('command', [])) or '(re-rendered)'}`",
        f"- targets: {', '.join(sorted(tables.summary['target'].astype(str).unique()))}",
        f"- model: {', '.join(models) or '–'}",
        f"- SLOs: TTFT ≤ {cfg.get('slo_ttft_ms') or '–'} ms, "
        f"TPOT ≤ {cfg.get('slo_tpot_ms') or '–'} ms",
        f"- schema version: {meta.get('schema_version', '–')}; raw rows: rows.parquet, rows.csv",
    ]
    targets = meta.get("targets", [])
    if any(t.get("synthetic") for t in targets):
        lines.append("- **backend: the Ollama simulator (synthetic numbers, no model ran)**")
    versions = sorted({str((t.get("version") or {}).get("version")) for t in targets} - {"None"})
    machine = meta.get("machine", {})
    if machine:
        gpus = ", ".join(machine.get("gpus") or []) or "none"
        harness = machine.get("versions", {})
        lines.append(
            f"- server: Ollama API {', '.join(versions) or '–'}; machine: "
            f"{machine.get('cpu_count')} CPUs, GPU {gpus}; ollama-farm "
            f"{harness.get('ollama-farm')}, locust {harness.get('locust')}"
        )
    summary = tables.summary
    small = summary[summary["ok"] < _N_STABLE_P99] if len(summary) else summary
    if len(small):
        lines.append(
            f"- p99 values come from fewer than {_N_STABLE_P99} requests per cell: treat as rough"
        )
    verdict = [f"- {v}" for v in verdict_lines(tables.checks)]
    return [*lines, "", "## Harness verdict", "", *verdict, ""]


def markdown(tables: Tables, meta: Mapping[str, Any], plot_paths: Sequence[Path]) -> str:
    """report.md: header and verdict, then every summary table, the formulas and the plots."""
    parts = _header(tables, meta)
    parts += ["## Summary (per target × streams)", "", md_table(tables.summary, SUMMARY_COLUMNS)]
    parts += ["## Added by path (paired with direct on prompt ids)", "", md_table(tables.paired)]
    parts += ["## TTFT decomposition (medians, ms)", "", md_table(tables.decomposition)]
    parts += ["## Token accounting", "", md_table(tables.summary, TOKEN_COLUMNS)]
    parts += ["## Errors", "", md_table(tables.errors)]
    parts += ["## NKN transport", "", md_table(tables.nkn)]
    parts += ["## Formulas", ""] + [f"- `{k}`: {v}" for k, v in FORMULAS] + [""]
    parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plot_paths] + [""]
    return "\n".join(parts)


def _html_table(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    if frame.empty:
        return "<p><em>none</em></p>"
    table: str = frame[cols].to_html(
        index=False, float_format=lambda v: _fmt(float(v)), na_rep="–", border=0
    )
    return table


def _inline_md(text: str) -> str:
    """Escape, then render `**bold**` and `code` spans of a verdict line."""
    out = htmllib.escape(text)
    while out.count("**") >= 2:
        out = out.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
    while out.count("`") >= 2:
        out = out.replace("`", "<code>", 1).replace("`", "</code>", 1)
    return out


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def html(tables: Tables, meta: Mapping[str, Any], plot_paths: Sequence[Path]) -> str:
    """report.html: the same content, one file, plots embedded as data URIs."""
    header = [
        _inline_md(line.removeprefix("- "))
        for line in _header(tables, meta)[2:]
        if line.startswith("- ")
    ]
    images = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{_b64(p)}">'
        f"<figcaption>{p.stem}</figcaption></figure>"
        for p in plot_paths
    )
    formulas = "".join(f"<li><code>{k}</code>: {htmllib.escape(v)}</li>" for k, v in FORMULAS)
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:13px}"
        "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "img{max-width:100%}figure{display:inline-block;margin:0 1em 1em 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>ollama-farm benchmark</title>"
        f"<style>{style}</style></head><body><h1>ollama-farm benchmark</h1>"
        f"<ul>{''.join(f'<li>{h}</li>' for h in header)}</ul>"
        f"<h2>Summary</h2>{_html_table(tables.summary, SUMMARY_COLUMNS)}"
        f"<h2>Added by path (paired with direct)</h2>{_html_table(tables.paired)}"
        f"<h2>TTFT decomposition (medians, ms)</h2>{_html_table(tables.decomposition)}"
        f"<h2>Token accounting</h2>{_html_table(tables.summary, TOKEN_COLUMNS)}"
        f"<h2>Errors</h2>{_html_table(tables.errors)}"
        f"<h2>NKN transport</h2>{_html_table(tables.nkn)}"
        f"<h2>Formulas</h2><ul>{formulas}</ul><h2>Plots</h2>{images}</body></html>"
    )
