"""`FarmStateSettings`: where a farm keeps its state (`.farm/`), shared by every verb that
finds a running farm (`up`, `down`, `status`, `logs`) and by the key database's commands."""

from __future__ import annotations

from pathlib import Path

from farm.settings import ServiceSettings, setting


class FarmStateSettings(ServiceSettings):
    """Where a farm records itself: every verb finds the running farm through this."""

    state_dir: Path = setting(
        Path(".farm"),
        help="directory of the farm's state file and logs",
        env="FARM_STATE_DIR",
        cli=False,
    )
