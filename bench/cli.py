"""The `python -m bench` command line: flags → BenchConfig → `run_bench` → summary and path.

Also `python -m bench report DIR [DIR…]` to re-render or compare result folders. This module
is the entry point, so it alone configures logging and writes to the terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.config import BenchConfig, parse_duration_s, parse_streams, parse_targets
from bench.demo import DemoPlan, run_demo, shield_sigterm
from bench.errors import BenchError
from bench.render import md_table, verdict_lines
from bench.report import Report, compare_reports, write_report
from bench.run import Progress, run_bench

# The terminal gets the headline columns; report.md/html have them all.
CONSOLE_COLUMNS = [
    "target", "streams", "achieved_streams", "ok", "errors", "req_per_s", "agg_tok_s",
    "stream_tok_s_p50", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "e2e_s_p50", "good_fraction",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The flags of `python -m bench` (see the README's Benchmark section)."""
    p = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the farm with parallel streams."
    )
    p.add_argument("--target", default="proxy", help="proxy|direct|nkn|all (or a comma list)")
    p.add_argument("--url", help="URL of the target (proxy, or backend with --target direct)")
    p.add_argument("--direct-url", help="backend URL for --target all (default: from the proxy)")
    p.add_argument("--relay-address", help="NKN address of the relay (--target nkn)")
    p.add_argument("--nkn-rpc-url", help="NKN seed RPC (e.g. the local node's) for the NKN user")
    p.add_argument(
        "--nkn-loopback",
        action="store_true",
        help="NKN target without the network: the relay engine in-process before the proxy",
    )
    p.add_argument("--model", help="model name (default: the farm's model from /_health)")
    p.add_argument(
        "--api", choices=["ollama", "openai"], default="ollama", help="native NDJSON or /v1 SSE"
    )
    p.add_argument("--streams", type=int, default=1, help="concurrent streams (closed loop)")
    p.add_argument("--sweep", help="comma list of stream counts, one run each (e.g. 1,2,4,9,16)")
    p.add_argument("--duration", default=None, help="run length per run, e.g. 60s (default 30s)")
    p.add_argument("--requests", type=int, help="stop after N requests per run instead")
    p.add_argument("--warmup", type=int, default=1, help="warm-up requests per stream, excluded")
    p.add_argument("--rate", type=float, help="open-loop Poisson arrivals per second (streams cap)")
    p.add_argument("--prompts", default="mixed", help="short|medium|long|mixed or a JSONL file")
    p.add_argument("--prompt-count", type=int, default=64, help="size of a built-in prompt set")
    p.add_argument("--max-tokens", type=int, default=128, help="num_predict / max_tokens")
    p.add_argument("--seed", type=int, default=1, help="seed for prompts, sampling, arrivals")
    p.add_argument("--slo-ttft-ms", type=float, help="goodput SLO on TTFT")
    p.add_argument("--slo-tpot-ms", type=float, help="goodput SLO on TPOT")
    p.add_argument(
        "--workers", type=int, default=0, help="locust worker processes (0: one process)"
    )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds without data before a timeout"
    )
    p.add_argument(
        "--out", type=Path, help="result folder (default results/<ts>-<target>-<streams>)"
    )
    p.add_argument("--web", action="store_true", help="locust's web UI instead of headless")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    return p


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> BenchConfig:
    """Overlay parsed flags on `BenchConfig.from_env(environ)`."""
    base = BenchConfig.from_env(environ)
    targets = parse_targets(args.target)
    urls: dict[str, str | None] = {}
    if args.url:
        urls["direct_url" if targets == ("direct",) else "proxy_url"] = args.url
    if args.direct_url:
        urls["direct_url"] = args.direct_url
    duration = parse_duration_s(args.duration) if args.duration else None
    if duration is None and args.requests is None:
        duration = 30.0
    return base.replace(
        targets=targets,
        streams=parse_streams(args.sweep) if args.sweep else (args.streams,),
        relay_address=args.relay_address or base.relay_address,
        nkn_rpc_url=args.nkn_rpc_url or base.nkn_rpc_url,
        nkn_loopback=args.nkn_loopback,
        model=args.model or base.model,
        api=args.api,
        duration_s=duration,
        requests=args.requests,
        warmup=args.warmup,
        rate_per_s=args.rate,
        prompts=args.prompts,
        prompt_count=args.prompt_count,
        max_tokens=args.max_tokens,
        seed=args.seed,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_tpot_ms=args.slo_tpot_ms,
        workers=args.workers,
        request_timeout_s=args.timeout,
        out=args.out,
        web=args.web,
        progress=not args.quiet,
        **urls,
    )


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
    for line in verdict_lines(report):
        print(line)
    print(f"\nreport: {report.out / 'report.html'}  (also report.md, rows.parquet, summary.csv)")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command; return the exit status (2 for a user error)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["report"]:
            return _report_command(args_list[1:])
        if args_list[:1] == ["demo"]:
            return _demo_command(args_list[1:])
        args = build_parser().parse_args(args_list)
        config = config_from_args(args, os.environ if environ is None else environ)
        if config.web:
            print(
                "locust web UI: http://127.0.0.1:8089 (Ctrl-C ends the run and writes the report)"
            )
        print_report(run_bench(config, _progress if config.progress and not config.web else None))
    except KeyboardInterrupt:
        print("\ninterrupted; the rows so far are in the result folder's report", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _report_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench report", description="Re-render or compare results."
    )
    p.add_argument("dirs", nargs="+", type=Path, help="result folders")
    p.add_argument("--out", type=Path, help="where a comparison goes (default results/compare-…)")
    args = p.parse_args(argv)
    if len(args.dirs) == 1 and args.out is None:
        print_report(write_report(args.dirs[0]))
    else:
        out = (
            args.out
            or Path("results") / ("compare-" + "-vs-".join(d.name for d in args.dirs))[:120]
        )
        print_report(compare_reports(args.dirs, out))
    return 0


def _demo_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench demo", description="Farm + relay + bench, then down."
    )
    p.add_argument("--mode", default="sim", choices=["sim", "docker", "local"], help="farm backend")
    p.add_argument("--model", default="gemma3:4b", help="model to serve")
    p.add_argument("--streams", type=int, default=9, help="concurrent streams per path")
    p.add_argument("--duration", default="15s", help="measuring time per path")
    p.add_argument("--out", type=Path, help="result folder")
    args = p.parse_args(argv)
    plan = DemoPlan(
        mode=args.mode,
        model=args.model,
        streams=args.streams,
        duration_s=parse_duration_s(args.duration),
        out=args.out,
    )
    shield_sigterm()
    if args.mode == "sim":
        print("demo: the farm runs on the Ollama simulator — synthetic numbers, no model runs")
    print_report(run_demo(plan, _progress))
    return 0
