"""`python -m bench`: run a benchmark (or `python -m bench report DIR…`); see bench.cli."""

from __future__ import annotations

import sys

from bench.cli import main

sys.exit(main())
