"""Operator verbs for ollama-farm (`invoke --list`). Each task parses flags, builds a config
and calls one library function; the logic lives in the packages."""

from __future__ import annotations

import shlex
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


def _quoted(args: list[str]) -> list[str]:
    """Shell-quote arguments for `_python`, which joins them into one command line."""
    return [shlex.quote(a) for a in args]


@task(help={"check": "report each item (ok/missing/wrong) and change nothing"})
def gpu_setup(c: Context, check: bool = False) -> None:
    """Prepare this Ubuntu 24.04 host's Docker for NVIDIA GPUs (run as root; idempotent)."""
    _python(c, "farm.gpu", _flag("check", check))


@task(
    iterable=["backend_url"],
    auto_shortflags=False,
    help={
        "model": "MODEL[:tag] to serve (required), e.g. gemma3:4b",
        "num_parallel": "parallel slots (OLLAMA_NUM_PARALLEL), default 4",
        "gpu_layers": "num_gpu layers; -1 = as many as fit",
        "front_port": "proxy port clients use (8080)",
        "back_port": "backend port; replicas take the next ones (11434)",
        "host": "proxy bind address (0.0.0.0)",
        "back_host": "where the back port is published (127.0.0.1)",
        "mode": "auto | docker | local | sim",
        "models_dir": "model cache dir (auto-detected)",
        "keepalive": "keep the model loaded this long (1h)",
        "ctx": "num_ctx pinned for every request (4096)",
        "pull": "/api/pull the model first (default; --no-pull skips it)",
        "backend_url": "use a running Ollama instead (repeatable)",
        "replicas": "N backends (weights duplicated)",
        "image": "Docker image (ollama/ollama:latest)",
        "name": "container/process name prefix (ollama-farm)",
        "detach": "leave it running; `invoke down` stops it",
        "max_queue": "OLLAMA_MAX_QUEUE",
        "flash_attention": "OLLAMA_FLASH_ATTENTION=1",
        "cpu": "run without requesting a GPU",
    },
)
def up(
    c: Context,
    model: str = "",
    num_parallel: int = 4,
    gpu_layers: int = -1,
    front_port: int = 8080,
    back_port: int = 11434,
    host: str | None = None,
    back_host: str | None = None,
    mode: str = "auto",
    models_dir: str | None = None,
    keepalive: str | None = None,
    ctx: int = 4096,
    pull: bool = True,
    backend_url: list[str] | None = None,
    replicas: int = 1,
    image: str | None = None,
    name: str | None = None,
    detach: bool = False,
    max_queue: int | None = None,
    flash_attention: bool = False,
    cpu: bool = False,
) -> None:
    """Start one warm Ollama backend with N slots and the proxy in front (`python -m farm up`)."""
    if not model:
        # A keyword, not a positional: invoke would otherwise swallow `--help` as the model.
        raise Exit("invoke up: --model is required, e.g. invoke up --model gemma3:4b", code=2)
    args = ["up", "--model", model]
    for flag, value in [
        ("num-parallel", num_parallel), ("gpu-layers", gpu_layers), ("front-port", front_port),
        ("back-port", back_port), ("host", host), ("back-host", back_host), ("mode", mode),
        ("models-dir", models_dir), ("keepalive", keepalive), ("ctx", ctx),
        ("no-pull", not pull), ("replicas", replicas), ("image", image), ("name", name),
        ("detach", detach), ("max-queue", max_queue), ("flash-attention", flash_attention),
        ("cpu", cpu),
    ]:  # fmt: skip
        args += _flag(flag, value)
    for url in backend_url or []:
        args += ["--backend-url", url]
    _python(c, "farm", _quoted(args))


@task
def down(c: Context) -> None:
    """Stop what `invoke up` started (containers, processes, proxy)."""
    _python(c, "farm", ["down"])


@task
def status(c: Context) -> None:
    """Show backends, loaded model, slots, in-flight streams and GPU memory."""
    _python(c, "farm", ["status"])


@task(
    help={
        "no_follow": "print and exit instead of following",
        "tail": "lines of history (100)",
        "replica": "which backend, 1-based (1)",
    }
)
def logs(c: Context, no_follow: bool = False, tail: int = 100, replica: int = 1) -> None:
    """Follow the backend's logs."""
    args = ["logs", "--tail", str(tail), "--replica", str(replica)] + _flag("no-follow", no_follow)
    _python(c, "farm", args)


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


@task(
    help={
        "env_file": "settings file, created with a fresh NKN seed on first run (default .env)",
        "debug": "live terminal view of incoming and outgoing DMs",
    }
)
def relay(c: Context, env_file: str = ".env", debug: bool = False) -> None:
    """Run the NKN relay in front of the farm proxy (prints `NKN ready: <address>`)."""
    _python(c, "relay", _flag("env-file", env_file) + _flag("debug", debug))


@task(
    help={
        "streams": "concurrent streams (closed loop, default 1)",
        "target": "proxy|direct|nkn|all (default proxy; all = one after another, same prompts)",
        "url": "URL of the target (default: proxy http://127.0.0.1:8080)",
        "relay_address": "the relay's NKN address (--target nkn/all)",
        "model": "model (default: the farm's, from /_health)",
        "duration": "run length per run, e.g. 60s (default 30s)",
        "requests": "stop after N requests per run instead of a duration",
        "sweep": "comma list of stream counts, e.g. 1,2,4,9,16",
        "workers": "locust worker processes (distributed mode; default 0 = one process)",
        "rate": "open-loop Poisson arrivals per second (the streams cap concurrency)",
        "out": "result folder (default results/<ts>-<target>-<streams>)",
        "web": "locust's web UI instead of headless",
        "extra": "further `python -m bench` flags, quoted (see `python -m bench --help`)",
    }
)
def bench(
    c: Context,
    streams: int | None = None,
    target: str | None = None,
    url: str | None = None,
    relay_address: str | None = None,
    model: str | None = None,
    duration: str | None = None,
    requests: int | None = None,
    sweep: str | None = None,
    workers: int | None = None,
    rate: float | None = None,
    out: str | None = None,
    web: bool = False,
    extra: str = "",
) -> None:
    """Benchmark the farm with parallel streams (locust) and write a report."""
    args = _flag("streams", streams) + _flag("target", target) + _flag("url", url)
    args += _flag("relay-address", relay_address) + _flag("model", model)
    args += _flag("duration", duration) + _flag("requests", requests) + _flag("sweep", sweep)
    args += _flag("workers", workers) + _flag("rate", rate) + _flag("out", out)
    _python(c, "bench", args + _flag("web", web) + extra.split())


@task(
    help={
        "dirs": "one result folder to re-render, or several (quoted, space-separated) to compare",
        "out": "where a comparison goes (default results/compare-…)",
    }
)
def report(c: Context, dirs: str, out: str | None = None) -> None:
    """Re-render a benchmark report, or compare several runs side by side."""
    _python(c, "bench", ["report", *dirs.split(), *_flag("out", out)])


@task(
    help={
        "mode": "farm backend: sim (default, synthetic), docker or local (a real Ollama)",
        "model": "model to serve (default gemma3:4b)",
        "streams": "concurrent streams per path (default 9)",
        "duration": "measuring time per path (default 15s)",
    }
)
def demo(
    c: Context,
    mode: str = "sim",
    model: str | None = None,
    streams: int | None = None,
    duration: str | None = None,
) -> None:
    """Farm + local NKN relay + benchmark of every path, then tear down (first thing to run)."""
    args = _flag("mode", mode) + _flag("model", model) + _flag("streams", streams)
    _python(c, "bench", ["demo", *args, *_flag("duration", duration)])


@task(
    help={
        "host": "address to bind (default 127.0.0.1)",
        "port": "port to bind (default 8443)",
        "cert": "your TLS certificate (PEM); default: a self-signed one made on first run",
        "key": "your TLS private key (PEM), with --cert",
        "proxy_url": "the farm proxy the page streams from (default http://127.0.0.1:8080)",
        "relay_address": "the relay's NKN address, for the page's NKN path",
        "nkn_rpc": "NKN seed RPC URL, e.g. a local test node (default: the NKN mainnet)",
        "model": "model preselected on the page",
    }
)
def site(
    c: Context,
    host: str | None = None,
    port: int | None = None,
    cert: str | None = None,
    key: str | None = None,
    proxy_url: str | None = None,
    relay_address: str | None = None,
    nkn_rpc: str | None = None,
    model: str | None = None,
) -> None:
    """Serve the HTTPS demo page (prints its URL, default https://127.0.0.1:8443/)."""
    args = _flag("host", host) + _flag("port", port) + _flag("cert", cert) + _flag("key", key)
    args += _flag("proxy-url", proxy_url) + _flag("relay-address", relay_address)
    args += _flag("nkn-rpc", nkn_rpc) + _flag("model", model)
    _python(c, "farm.webdemo", args)
