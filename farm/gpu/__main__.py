"""`python -m farm.gpu [--check]`: prepare this host's Docker for NVIDIA GPUs (invoke gpu-setup)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from farm.config import GpuSetupConfig
from farm.errors import FarmError
from farm.gpu.ensure import check, ensure
from farm.gpu.probe import run_command


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run check or ensure, print one line per item; 0 when all is ok."""
    parser = argparse.ArgumentParser(prog="python -m farm.gpu", description=__doc__)
    parser.add_argument("--check", action="store_true", help="report only; change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = GpuSetupConfig.from_env(os.environ, check_only=args.check)
        if config.check_only:
            items = check(config, run_command, os.geteuid())
        else:
            report = ensure(config, run_command, os.geteuid())
            items = list(report.items)
            for change in report.changes:
                print(f"changed  {change}")
            if not report.changes:
                print("no changes: the host was already set up")
    except FarmError as exc:
        print(f"gpu-setup: {exc}", file=sys.stderr)
        return 1
    for item in items:
        print(f"{item.state:<8} {item.name:<15} {item.detail}")
    return 0 if all(item.ok for item in items) else 1


if __name__ == "__main__":
    sys.exit(main())
