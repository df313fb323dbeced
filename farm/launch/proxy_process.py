"""The proxy as a child process: `python -m farm.proxy` with option pinning on.

Pinning `num_ctx`/`num_gpu` (and the model) in the proxy means clients that omit those options
reach the runner the warm-up loaded, instead of forcing a reload. The API key travels in
FARM_API_KEY, not argv, so it does not show in `ps`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from farm.config import FarmConfig
from farm.errors import BackendNotReady, ProxyError
from farm.launch.backend import wait_ready
from farm.launch.children import Child


def proxy_argv(config: FarmConfig, backend_urls: Sequence[str]) -> list[str]:
    """The proxy's command line for these backends."""
    argv = [sys.executable, "-m", "farm.proxy"]
    for url in backend_urls:
        argv += ["--backend", url]
    argv += [
        "--host",
        config.host,
        "--port",
        str(config.front_port),
        "--model",
        config.model,
        "--num-parallel",
        str(config.num_parallel),
        "--pin-num-ctx",
        str(config.ctx),
    ]
    # num_gpu -1 is Ollama's own default ("as many layers as fit") and the one value whose
    # change never forces a reload (§6.1), so omitting it is the same pin; the proxy's flag
    # accepts only layer counts >= 0.
    if config.pin_num_gpu >= 0:
        argv += ["--pin-num-gpu", str(config.pin_num_gpu)]
    return argv


def probe_url(host: str, port: int) -> str:
    """Where we can reach a server bound to `host` (a wildcard bind is probed on loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def spawn_proxy(config: FarmConfig, backend_urls: Sequence[str], log_dir: Path) -> Child:
    """Start the proxy process without waiting (it boots while the backends warm up)."""
    env = dict(config.base_env)
    if config.api_key:
        env["FARM_API_KEY"] = config.api_key
    child = Child(proxy_argv(config, backend_urls), env, log_dir / f"{config.name}-proxy.log")
    try:
        child.start()
    except OSError as exc:
        raise ProxyError(f"cannot start the proxy: {exc.strerror}") from exc
    return child


def wait_proxy(config: FarmConfig, child: Child) -> None:
    """Wait until the proxy's `/_health` answers 200 (ready); ProxyError otherwise."""
    try:
        wait_ready(
            probe_url(config.host, config.front_port),
            60.0,
            child.alive,
            lambda: f"proxy log:\n{child.log_tail(10)}",
            path="/_health",
        )
    except BackendNotReady as exc:
        raise ProxyError(f"the proxy did not become ready: {exc}") from exc
