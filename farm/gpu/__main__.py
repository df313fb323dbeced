"""`python -m farm.gpu [--check]`: prepare this host's Docker for NVIDIA GPUs (invoke gpu-setup);
`python -m farm.gpu gpus [--json]`: list the GPUs through NVML (invoke gpus).

Setup prints one line per changed file or step and one per checked item; exits 0 when every
item is ok, 1 when one is not or setup stopped (one line saying why), 2 for a bad setting.
The inventory prints a table (or JSON) and exits 0, or one line and 1 where NVML cannot start.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from farm.gpu import listing
from farm.gpu.ensure import check, ensure
from farm.gpu.errors import NvmlUnavailable, SetupError
from farm.gpu.inventory import read_inventory
from farm.gpu.probe import Item, run_command
from farm.gpu.settings import GpuSetupSettings, GpusSettings
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


def _gpus(loaded: Loaded[GpusSettings]) -> int:
    try:
        inventory = read_inventory()
    except NvmlUnavailable as exc:
        print(f"{GpusSettings.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(
        listing.as_json(inventory)
        if loaded.settings.json
        else "\n".join(listing.as_table(inventory))
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Load the settings of the verb (setup, or `gpus`), run it; 0 when all is ok."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["gpus"]:
        return run_main(GpusSettings, _gpus, args[1:])
    return run_main(GpuSetupSettings, _run, args)


if __name__ == "__main__":
    sys.exit(main())
