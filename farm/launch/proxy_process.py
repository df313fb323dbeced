"""The proxy as a child process: `python -m farm.proxy` with option pinning on.

Pinning `num_ctx`/`num_gpu` (and the model) in the proxy means clients that omit those options
reach the runner the warm-up loaded, instead of forcing a reload. The argv is rendered from
`ProxySettings`; the API key travels in the proxy's environment (FARM_API_KEY), never in argv,
so it does not show in `ps`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from farm.keys.settings import DB_NAME
from farm.launch.backend import wait_ready
from farm.launch.children import Child, service_env
from farm.launch.errors import BackendNotReady, ProxyError
from farm.launch.settings import UpSettings
from farm.proxy.settings import ProxySettings
from farm.settings import SettingsError, to_argv
from farm.settings.load import validate

READY_TIMEOUT_S = 60.0


def proxy_settings(
    config: UpSettings, backend_urls: Sequence[str], labels: Mapping[str, str] | None = None
) -> ProxySettings:
    """The proxy's settings for these backends (`labels`: URL -> what it holds, shown in
    /_health); ProxyError if the proxy would refuse them."""
    values: dict[str, object] = {
        "backend": tuple(backend_urls),
        "host": config.host,
        "port": config.front_port,
        "model": config.model,
        "num_parallel": config.num_parallel,
        "pin_num_ctx": config.ctx,
        # Given even when None, so that an inherited FARM_API_KEY cannot set a key the farm
        # was not given (see `service_env`).
        "api_key": config.api_key,
        "cors_origins": config.cors_origins,
        # Named keys (`invoke keys.add`) live beside the state file; without any, nothing changes.
        "keys_db": (config.state_dir / DB_NAME).resolve(),
    }
    # num_gpu -1 is Ollama's own default ("as many layers as fit") and the one value whose
    # change never forces a reload, so leaving it unpinned is the same pin; the proxy's
    # setting accepts only layer counts >= 0.
    if config.pin_num_gpu >= 0:
        values["pin_num_gpu"] = config.pin_num_gpu
    if labels:
        # The proxy's list settings split on commas; a GPU name never needs one.
        values["backend_label"] = tuple(
            f"{url}={label.replace(',', ' ')}" for url, label in labels.items()
        )
    try:
        return validate(ProxySettings, values)
    except SettingsError as exc:
        raise ProxyError(f"the proxy cannot take the farm's settings: {exc}") from exc


def proxy_argv(settings: ProxySettings) -> list[str]:
    """The proxy's command line (secrets excluded: see `service_env`)."""
    return [sys.executable, "-m", "farm.proxy", *to_argv(settings)]


def probe_url(host: str, port: int) -> str:
    """Where we can reach a server bound to `host` (a wildcard bind is probed on loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def spawn_proxy(
    config: UpSettings,
    backend_urls: Sequence[str],
    base_env: Mapping[str, str],
    log_dir: Path,
    labels: Mapping[str, str] | None = None,
) -> Child:
    """Start the proxy process without waiting (it boots while the backends warm up)."""
    settings = proxy_settings(config, backend_urls, labels)
    env = service_env(base_env, settings)
    child = Child(proxy_argv(settings), env, log_dir / f"{config.name}-proxy.log")
    try:
        child.start()
    except OSError as exc:
        raise ProxyError(f"cannot start the proxy: {exc.strerror}") from exc
    return child


def wait_proxy(config: UpSettings, child: Child) -> None:
    """Wait until the proxy's `/_health` answers 200 (ready); ProxyError otherwise."""
    try:
        wait_ready(
            probe_url(config.host, config.front_port),
            READY_TIMEOUT_S,
            child.alive,
            lambda: f"proxy log:\n{child.log_tail(10)}",
            path="/_health",
        )
    except BackendNotReady as exc:
        raise ProxyError(f"the proxy did not become ready: {exc}") from exc
