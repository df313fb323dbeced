"""`--twin PROFILE`: search the calibrated simulator first, then confirm on the real backend.

The twin (the simulator started with a profile from `invoke calibrate`) is searched over
every candidate with part of the budget; only its best candidates are then measured on the
real backend, each search starting at the twin's answer, so the real backend spends its time
around the knee. The report puts both side by side with how far apart they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.tune.outcome import TuneResult
from bench.tune.settings import TuneSettings
from farm.settings import spec_of
from farm.sim.profile import read_profile
from farm.sim.settings import SimSettings

# The simulator's variable for its profile (farm.sim.settings.SimSettings.profile): the
# launcher's sim child inherits it.
PROFILE_VARIABLE = "FARM_SIM_PROFILE"
TWIN_SHARE = 0.4
CONFIRM = 2


def twin_settings(config: TuneSettings, out: Path) -> TuneSettings:
    """The twin's tune: every candidate, on the simulator, with its share of the budget."""
    return config.model_copy(
        update={
            "mode": "sim",
            "twin": None,
            "apply": False,
            "out": out,
            "budget": config.budget * TWIN_SHARE,
        }
    )


def twin_environ(environ: Mapping[str, str], profile: Path) -> dict[str, str]:
    """The environment the twin's simulator starts with: the profile's timing model, without
    the variables that would override the profile's values (a variable beats a profile)."""
    drop = {key for name in read_profile(profile).timing for key in spec_of(SimSettings, name).env}
    kept = {k: v for k, v in environ.items() if k not in drop}
    return {**kept, PROFILE_VARIABLE: str(profile.resolve())}


def to_confirm(twin: TuneResult) -> dict[int, int]:
    """NUM_PARALLEL -> the twin's capacity, for the best `CONFIRM` candidates serving anyone."""
    serving = [c for c in twin.candidates if c.capacity.users > 0]
    ranked = sorted(serving, key=lambda c: (-c.capacity.users, c.num_parallel))[:CONFIRM]
    return {c.num_parallel: c.capacity.users for c in ranked}


def confirm_settings(
    config: TuneSettings, starts: Mapping[int, int], spent_s: float
) -> TuneSettings:
    """The real backend's tune: only the twin's best candidates, with the budget left."""
    return config.model_copy(
        update={"num_parallel": tuple(sorted(starts)), "budget": max(0.0, config.budget - spent_s)}
    )


def comparison(twin: TuneResult, real: TuneResult) -> list[str]:
    """One line per confirmed candidate: the twin's capacity, the real one, the difference."""
    lines = []
    for cand in real.candidates:
        other = next((c for c in twin.candidates if c.num_parallel == cand.num_parallel), None)
        if other is None:
            continue
        diff = cand.capacity.users - other.capacity.users
        rel = f", {diff / other.capacity.users:+.0%}" if other.capacity.users else ""
        lines.append(
            f"NUM_PARALLEL={cand.num_parallel}: twin {other.capacity.users} users "
            f"(CI {other.capacity.lo}-{other.capacity.hi}), real backend {cand.capacity.users} "
            f"(CI {cand.capacity.lo}-{cand.capacity.hi}): {diff:+d} users{rel}"
        )
    return lines
