"""The hermetic gates: `nox -s tests` (the README's test command), `lint`, `typecheck`.

One shared recipe installs the project with its dev extras and the relay's pinned Node
packages, so a fresh clone needs nothing installed by hand (see .ci/run for system packages).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
BRIDGE = ROOT / "relay" / "bridge"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    if (BRIDGE / "package-lock.json").exists():
        # `npm ci` installs exactly what the lock file pins; never done silently at run time.
        session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", str(BRIDGE), external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest flags after `--`)."""
    _install(session)
    session.run("pytest", *session.posargs, env={"NO_PROXY": "127.0.0.1,localhost,::1"})


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and format check, and the import contracts (pyproject.toml)."""
    session.install("ruff>=0.4", "import-linter>=2.0")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Reads the source only; the repository root on the path is enough, no install needed.
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT)})


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy strict on the packages."""
    _install(session)
    session.run("mypy")
