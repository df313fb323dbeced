"""`python -m farm`: the farm launcher, whose verbs and settings live in `farm.launch`."""

from __future__ import annotations

import sys

from farm.launch.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
