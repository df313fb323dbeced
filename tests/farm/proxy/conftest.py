"""Fixtures for the proxy's tests: the anyio backend, a fake backend and an in-process proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from farm.common.frontdoor import door_config
from farm.common.net import free_port
from farm.proxy.app import ProxyApp, create_app
from farm.proxy.settings import ProxySettings
from tests.farm.proxy.fake_backend import FakeBackend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    backend = await FakeBackend().start()
    try:
        yield backend
    finally:
        await backend.stop()


class RunningProxy:
    """A proxy served by uvicorn inside the test's event loop."""

    def __init__(self, app: ProxyApp, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def run_proxy(settings: ProxySettings) -> AsyncIterator[RunningProxy]:
    """Serve `settings` on loopback until the block ends."""
    port = free_port()
    app = create_app(settings)
    uv = uvicorn.Server(
        door_config(
            app,
            settings,
            host="127.0.0.1",
            port=port,
            loop="none",
            graceful_shutdown_s=1,
            server_header=False,
            date_header=False,
        )
    )
    uv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(uv.serve())
    try:
        while not uv.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield RunningProxy(app, port)
    finally:
        uv.should_exit = True
        await task


@pytest.fixture
def proxy_for() -> Callable[..., Any]:
    """`async with proxy_for([urls], **settings) as proxy:` — an in-process proxy."""

    def make(backends: list[str], **kwargs: Any) -> Any:
        kwargs.setdefault("health_interval", 0.2)
        return run_proxy(ProxySettings(backend=tuple(backends), **kwargs))

    return make
