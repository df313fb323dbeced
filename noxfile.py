"""The hermetic gates: `nox -s tests` (the README's test command), `lint`, `typecheck`.

One shared recipe installs the project with its dev extras and the pinned Node packages (the
relay's NKN bridge, the simulator's llama.cpp engine), so a fresh clone needs nothing installed
by hand. The page tests drive Debian's Chromium, the `curl -N` tests curl, and the Docker
tests start their own `dockerd` (docker.io, with iproute2 for its bridge): `tests` installs
whatever of these is missing from the distribution's packages when nox runs as root;
otherwise it stops at once with the command.
`tests` then queues `lint` and `typecheck`, so the README's one command runs every gate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
BRIDGE = ROOT / "relay" / "bridge"
ENGINE = ROOT / "farm" / "sim" / "engines" / "llamacpp"
# The programs the tests drive, and the Debian/Ubuntu packages that bring them.
SYSTEM_PACKAGES = {"chromium": "chromium", "curl": "curl", "dockerd": "docker.io", "ip": "iproute2"}


def _system_packages(session: nox.Session) -> None:
    missing = [pkg for program, pkg in SYSTEM_PACKAGES.items() if shutil.which(program) is None]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error(f"missing {', '.join(missing)}: run `sudo {' '.join(command)}`, then again")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run(*command, external=True, env=env)


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    if shutil.which("npm") is None:
        session.error("npm not found: install Node.js >= 18 with npm (apt-get install nodejs npm)")
    # `npm ci` installs exactly what the lock file pins; never done silently at run time.
    session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", str(BRIDGE), external=True)
    # The llama.cpp engine: the prebuilt CPU binary only (`--omit=optional` skips CUDA builds).
    npm_engine = [
        "npm",
        "ci",
        "--omit=optional",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(ENGINE),
    ]
    session.run(*npm_engine, external=True)


# python=None: the interpreter that runs nox (3.11+), so Ubuntu's 3.12 works as Debian's 3.11.
@nox.session(python=None)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest flags after `--`), then lint and typecheck."""
    _system_packages(session)
    _install(session)
    session.run("pytest", *session.posargs, env={"NO_PROXY": "127.0.0.1,localhost,::1"})
    if not session.posargs:
        session.notify("lint")
        session.notify("typecheck")


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff check and format check, and the import contracts (pyproject.toml)."""
    session.install("ruff>=0.4", "import-linter>=2.1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Reads the source only; the repository root on the path is enough, no install needed.
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT)})


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    """mypy strict on the packages."""
    _install(session)
    session.run("mypy")
