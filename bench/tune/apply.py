"""`--apply`: write the chosen NUM_PARALLEL into the `.env` the farm launcher reads.

Only the one key changes (added when absent); every other line, comment and order stays as it
was. The change is returned as a unified diff, for the operator to see what was written.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

# The launcher's variable for `--num-parallel` (farm.launch.settings.UpSettings).
KEY = "FARM_NUM_PARALLEL"
_LINE = re.compile(rf"^\s*(export\s+)?{KEY}\s*=")


def updated(text: str, num_parallel: int) -> str:
    """`text` (a .env file) with `KEY=num_parallel` set: the last assignment replaced in place,
    or one line appended."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if _LINE.match(line)]
    entry = f"{KEY}={num_parallel}\n"
    if hits:
        lines[hits[-1]] = entry
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(entry)
    return "".join(lines)


def apply_num_parallel(path: Path, num_parallel: int) -> str:
    """Write `num_parallel` into the .env at `path` (created if missing); return the diff
    ('' when the file already said so)."""
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    after = updated(before, num_parallel)
    if after == before:
        return ""
    path.write_text(after, encoding="utf-8")
    diff = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{path} (before)",
        tofile=f"{path} (after)",
    )
    return "".join(diff)
