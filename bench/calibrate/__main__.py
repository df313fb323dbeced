"""`python -m bench.calibrate`: calibrate a profile, or `--validate FILE` one."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from bench.calibrate.calibration import calibrate
from bench.calibrate.errors import CalibrateError
from bench.calibrate.settings import CalibrateSettings
from bench.calibrate.validation import table_lines, validate
from farm.settings import Loaded, run_main
from farm.sim.errors import ProfileError


def _run(loaded: Loaded[CalibrateSettings]) -> int:
    """Calibrate or validate; a user-facing failure is one line and exit code 1."""
    config = loaded.settings
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns progress
    try:
        if config.validate is not None:
            result = asyncio.run(validate(config, config.validate))
            print("\n".join(table_lines(result)))
            print(f"rows: {result.rows_path}")
            return 0
        done = asyncio.run(calibrate(config))
    except (CalibrateError, ProfileError) as exc:
        sys.stderr.write(f"{CalibrateSettings.prog}: error: {exc}\n")
        return 1
    print(f"profile: {done.path} (samples: {done.samples_path})")
    for key, value in done.profile.timing.items():
        print(f"  {key} = {value if isinstance(value, str) else round(value, 4)}")
    worst = max(done.fit.residuals.items(), key=lambda kv: abs(kv[1]), default=None)
    if worst is not None:
        print(f"  largest residual: {worst[0]} {worst[1] * 100:+.1f}%")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: settings from flags and environment, then calibrate or validate."""
    return run_main(CalibrateSettings, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
