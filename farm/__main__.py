"""`python -m farm`: start (`up`, the default), stop (`down`), inspect (`status`) or follow the
logs (`logs`) of a farm. User errors print one line and exit non-zero."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from farm.cli import logs_parser, split_verb, up_flags
from farm.config import FarmConfig, StateConfig
from farm.errors import ConfigError, FarmError, StateError
from farm.launch import lifecycle, state, status
from farm.launch.logs import backend_logs


def _status(state_dir: Path) -> int:
    record = state.load(state_dir)
    if record is None:
        print("no farm is running (no state file)")
        return 1
    report = status.collect(record)
    print("\n".join(status.render(report)))
    return 0 if report.healthy else 1


def _logs(state_dir: Path, argv: list[str]) -> int:
    args = logs_parser().parse_args(argv)
    record = state.load(state_dir)
    if record is None:
        raise StateError("no farm is running (no state file)")
    if not 1 <= args.replica <= len(record.backends):
        raise ConfigError(f"--replica {args.replica}: the farm has {len(record.backends)}")
    for chunk in backend_logs(record.backends[args.replica - 1], args.tail, not args.no_follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return 0


def run(argv: list[str]) -> int:
    """Dispatch one verb; FarmError propagates to `main`."""
    verb, rest = split_verb(argv)
    state_dir = StateConfig.from_env(os.environ).state_dir
    if verb == "up":
        config = FarmConfig.from_env(os.environ, **up_flags(rest))
        lifecycle.up(config, Path.cwd())
        return 0
    if rest and verb != "logs":
        raise ConfigError(f"{verb} takes no arguments (got {' '.join(rest)})")
    if verb == "down":
        stopped = lifecycle.down(state_dir)
        print("\n".join(f"stopped {s}" for s in stopped) or "no farm was running")
        return 0
    if verb == "status":
        return _status(state_dir)
    return _logs(state_dir, rest)


def main(argv: list[str] | None = None) -> int:
    """Entry point: configure logging, run, turn farm errors into one line and an exit code."""
    logging.basicConfig(level=logging.INFO, format="farm: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"farm: error: {exc}", file=sys.stderr)
        return 2
    except FarmError as exc:
        print(f"farm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
