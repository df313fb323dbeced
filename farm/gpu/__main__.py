"""`python -m farm.gpu [--check]`: prepare this host's Docker for NVIDIA GPUs (invoke gpu-setup).

Prints one line per changed file or step and one per checked item; exits 0 when every item is
ok, 1 when one is not or setup stopped (one line saying why), 2 for a bad setting.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from farm.gpu.ensure import check, ensure
from farm.gpu.errors import SetupError
from farm.gpu.probe import Item, run_command
from farm.gpu.settings import GpuSetupSettings
from farm.settings import Loaded, run_main


def _setup(config: GpuSetupSettings) -> list[Item]:
    if config.check:
        return check(config, run_command, os.geteuid())
    report = ensure(config, run_command, os.geteuid())
    for change in report.changes:
        print(f"changed  {change}")
    if not report.changes:
        print("no changes: the host was already set up")
    return list(report.items)


def _run(loaded: Loaded[GpuSetupSettings]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        items = _setup(loaded.settings)
    except SetupError as exc:
        print(f"{GpuSetupSettings.prog}: error: {exc}", file=sys.stderr)
        return 1
    for item in items:
        print(f"{item.state:<8} {item.name:<15} {item.detail}")
    return 0 if all(item.ok for item in items) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Load the settings, run check or ensure, print one line per item; 0 when all is ok."""
    return run_main(GpuSetupSettings, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
