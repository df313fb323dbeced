"""The `python -m bench` command line: settings → `run_bench` → summary table and report path.

Verbs: `python -m bench report DIR [DIR…]` re-renders or compares result folders, and
`python -m bench demo` runs the whole tour. Each has its own settings class (`bench.settings`);
the parser, `--help` and `--print-config` come from it. This module is the entry point, so it
alone configures logging and writes to the terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence

from bench.compare import change_lines
from bench.demo import run_demo, shield_sigterm
from bench.errors import BenchError
from bench.render import md_table, verdict_lines
from bench.report import Report, compare_reports, write_report
from bench.run import Progress, run_bench
from bench.settings import BenchSettings, DemoSettings, ReportSettings
from farm.settings import Loaded, run_main

# The terminal gets the headline columns; report.md/html have them all.
CONSOLE_COLUMNS = [
    "target", "streams", "achieved_streams", "ok", "errors", "req_per_s", "agg_tok_s",
    "stream_tok_s_p50", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "e2e_s_p50", "good_fraction",
]  # fmt: skip


def _progress(p: Progress) -> None:
    # On a terminal the line redraws in place; in a log, one line every 5 seconds.
    tty = sys.stderr.isatty()
    if not tty and int(p.elapsed_s) % 5:
        return
    line = (
        f"\r[{p.target} ×{p.streams}] {p.elapsed_s:5.0f}s  done {p.done}  active {p.in_flight}  "
        f"{p.tok_per_s:7.1f} tok/s  errors {p.errors}  worker CPU {p.cpu_pct_max:3.0f}%  "
    )
    sys.stderr.write(line if tty else line.lstrip("\r").rstrip() + "\n")
    sys.stderr.flush()


def print_report(report: Report) -> None:
    """The summary table, the harness verdict and where the report is."""
    sys.stderr.write("\n")
    print(md_table(report.summary, CONSOLE_COLUMNS))
    for line in verdict_lines(report.checks):
        print(line)
    for first, later, changes in report.changes:
        print("\n" + "\n".join(change_lines(changes, first, later)))
    print(f"\nreport: {report.out / 'report.html'}  (also report.md, rows.parquet, summary.csv)")


def _bench(loaded: Loaded[BenchSettings]) -> int:
    config = loaded.settings
    if config.web:
        print("locust web UI: http://127.0.0.1:8089 (Ctrl-C ends the run and writes the report)")
    live = _progress if not (config.quiet or config.web) else None
    print_report(run_bench(config, environ=loaded.environ, on_progress=live))
    return 0


def _report(loaded: Loaded[ReportSettings]) -> int:
    config = loaded.settings
    if len(config.dirs) == 1 and config.out is None:
        print_report(write_report(config.dirs[0]))
    else:
        print_report(compare_reports(list(config.dirs), config.comparison_out()))
    return 0


def _sample(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _demo(loaded: Loaded[DemoSettings]) -> int:
    shield_sigterm()
    if loaded.settings.mode == "sim":
        print("demo: the farm runs on the Ollama simulator — synthetic numbers, no model runs")
    elif loaded.settings.mode == "engine":
        print("demo: the farm runs real weights: Gemma 3 270M base on llama.cpp, CPU")
    print_report(run_demo(loaded.settings, loaded.environ, _progress, on_sample=_sample))
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command; return the exit status (2 for a user error)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["report"]:
            return run_main(ReportSettings, _report, args[1:], environ)
        if args[:1] == ["demo"]:
            return run_main(DemoSettings, _demo, args[1:], environ)
        return run_main(BenchSettings, _bench, args, environ)
    except KeyboardInterrupt:
        print("\ninterrupted; the rows so far are in the result folder's report", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
