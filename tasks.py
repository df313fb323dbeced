"""Operator verbs for ollama-farm (`invoke --list`). Each task parses flags, builds a config
and calls one library function; the logic lives in the packages."""

from __future__ import annotations

import shutil
import sys

from invoke import Context, Exit, task


def _python(c: Context, module: str, args: list[str], pty: bool = True) -> None:
    """Run `python -m module args` in the foreground, with a TTY for progress bars."""
    argv = " ".join([sys.executable, "-m", module, *args])
    result = c.run(argv, pty=pty and sys.stdout.isatty(), warn=True)
    if result is None or result.exited != 0:
        raise Exit(code=1 if result is None else result.exited)


def _flag(name: str, value: object) -> list[str]:
    """Render one optional CLI flag; None and False are left out."""
    if value is None or value is False:
        return []
    if value is True:
        return [f"--{name}"]
    return [f"--{name}", str(value)]


@task(
    help={
        "host": "address to bind (default: OLLAMA_HOST or 127.0.0.1)",
        "port": "port to bind (default: from OLLAMA_HOST or 11434)",
        "num_parallel": "slots per model (OLLAMA_NUM_PARALLEL, default 1)",
        "extra": "further flags passed to `python -m farm.sim`, quoted",
    }
)
def sim(
    c: Context,
    host: str | None = None,
    port: int | None = None,
    num_parallel: int | None = None,
    extra: str = "",
) -> None:
    """Run the Ollama simulator (a synthetic, model-free backend)."""
    args = _flag("host", host) + _flag("port", port) + _flag("num-parallel", num_parallel)
    _python(c, "farm.sim", args + extra.split())


@task(help={"args": 'flags passed to pytest, quoted (e.g. "-k proxy -x")'})
def test(c: Context, args: str = "") -> None:
    """Run the test suite through nox (the same command CI runs)."""
    rest = f" -- {args}" if args else ""
    c.run(f"{sys.executable} -m nox -s tests{rest}", pty=sys.stdout.isatty())


@task
def setup(c: Context) -> None:
    """Install the pinned Node packages of the NKN bridge (`npm ci`, exactly the lock file)."""
    if shutil.which("npm") is None:
        raise Exit("npm not found: install Node.js >= 18 and npm (e.g. apt-get install nodejs npm)")
    c.run("npm ci --no-audit --no-fund --prefix relay/bridge", pty=sys.stdout.isatty())


@task(
    name="nkn-local",
    help={
        "host": "address to bind (default 127.0.0.1)",
        "port": "port for JSON-RPC and websocket together (default 30002)",
        "certfile": "TLS certificate: serve https/wss, for `getwssaddr` and HTTPS pages",
        "keyfile": "TLS private key for --certfile",
    },
)
def nkn_local(
    c: Context,
    host: str | None = None,
    port: int | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Run a local NKN test node (not the real network) for the relay, the site and the bench."""
    args = _flag("host", host) + _flag("port", port)
    args += _flag("certfile", certfile) + _flag("keyfile", keyfile)
    _python(c, "relay.localnode", args)
