"""`python -m bench.tune` (`invoke tune`): settings → `run_tune` → the answer and the report.

The entry point: it alone configures logging and writes to the terminal (the progress bar on
stderr, the table and the answer on stdout). User mistakes and a failing backend end in one
line and exit status 2; an interrupted tune says where it stopped (130).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence

from bench.errors import BenchError
from bench.render import md_table
from bench.tune.apply import apply_num_parallel
from bench.tune.errors import Interrupted
from bench.tune.outcome import TuneResult
from bench.tune.report import candidates_table
from bench.tune.settings import TuneSettings
from bench.tune.tune import TuneProgress, run_tune
from farm.settings import Loaded, run_main

_BAR = 24


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _progress(p: TuneProgress) -> None:
    """A bar of the budget spent, the candidate and level being tried, and the ETA."""
    tty = sys.stderr.isatty()
    if not tty and int(p.elapsed_s) % 5:
        return
    done = min(1.0, p.elapsed_s / (p.elapsed_s + p.eta_s)) if p.elapsed_s + p.eta_s else 0.0
    bar = "#" * int(done * _BAR) + "-" * (_BAR - int(done * _BAR))
    what = f"{p.users} users, {p.answers} answers" if p.users else "starting the backend"
    line = (
        f"\r[{bar}] NUM_PARALLEL={p.num_parallel} ({p.candidate}/{p.candidates}): {what}; "
        f"levels {p.levels_done}; {_clock(p.elapsed_s)} elapsed, ETA {_clock(p.eta_s)} "
        f"(budget {_clock(p.budget_s)})   "
    )
    sys.stderr.write(line if tty else line.lstrip("\r").rstrip() + "\n")
    sys.stderr.flush()


def _print(result: TuneResult) -> None:
    sys.stderr.write("\n")
    print(md_table(candidates_table(result)))
    print(result.headline)
    if result.stopped:
        print(f"stopped: {result.stopped}")
    print(f"report: {result.out / 'report.html'}  (also report.md, rows.parquet, plots/)")


def _tune(loaded: Loaded[TuneSettings]) -> int:
    config = loaded.settings
    if config.mode == "sim":
        print("tune: the backend is the Ollama simulator (synthetic numbers, no model runs)")
    live = None if config.quiet else _progress
    result = run_tune(config, environ=loaded.environ, on_progress=live)
    _print(result)
    best = result.best
    unmeetable = next((c.unmeetable for c in result.candidates if c.unmeetable), "")
    if best is None:
        print(f"error: {unmeetable or result.headline}", file=sys.stderr)
        return 1
    if config.apply:
        diff = apply_num_parallel(config.env_file, best.num_parallel)
        print(diff or f"{config.env_file} already sets num_parallel {best.num_parallel}")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the tune; return the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The launcher restarts the farm per candidate; its start-up notices would bury the bar.
    logging.getLogger("farm.launch").setLevel(logging.ERROR)
    try:
        return run_main(TuneSettings, _tune, sys.argv[1:] if argv is None else argv, environ)
    except Interrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted before the tune began", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
