"""The simulator's ASGI application: `create_app(config)`, routing, guards, error boundary."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from farm.sim import (
    routes_authoring,
    routes_embed,
    routes_inference,
    routes_listing,
    routes_models,
    routes_openai,
)
from farm.sim.catalogue import find
from farm.sim.engines.choice import engine_for
from farm.sim.engines.synthetic import SyntheticEngine
from farm.sim.errors import ApiError, ClientGone
from farm.sim.exchange import TEXT_TYPE, Exchange, Receive, Scope, Send
from farm.sim.guard import (
    ALLOWED_HEADERS,
    ALLOWED_METHODS,
    host_allowed,
    is_loopback_bind,
    origin_allowed,
)
from farm.sim.names import parse_name
from farm.sim.settings import SimSettings
from farm.sim.simulator import Simulator
from farm.sim.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[Simulator, Exchange], Awaitable[None]]
DEFAULT_MODEL = "gemma3:4b"


def _routes() -> dict[str, dict[str, Handler]]:
    listing, inference, models, openai = (
        routes_listing,
        routes_inference,
        routes_models,
        routes_openai,
    )
    return {
        "/": {"GET": listing.root, "HEAD": listing.root},
        "/api/version": {"GET": listing.version, "HEAD": listing.version},
        "/api/tags": {"GET": listing.tags, "HEAD": listing.tags},
        "/api/ps": {"GET": listing.ps},
        "/api/generate": {"POST": inference.generate},
        "/api/chat": {"POST": inference.chat},
        "/api/embed": {"POST": routes_embed.embed},
        "/api/embeddings": {"POST": routes_embed.embeddings},
        "/api/show": {"POST": models.show},
        "/api/copy": {"POST": models.copy},
        "/api/delete": {"DELETE": models.delete},
        "/api/pull": {"POST": models.pull},
        "/api/create": {"POST": routes_authoring.create},
        "/api/push": {"POST": routes_authoring.push},
        "/v1/chat/completions": {"POST": openai.chat_completions},
        "/v1/completions": {"POST": openai.completions},
        "/v1/embeddings": {"POST": openai.embeddings},
        "/v1/models": {"GET": openai.models},
        "/_sim/state": {"GET": listing.sim_state},
        "/_sim/tokenize": {"POST": listing.sim_tokenize},
    }


def _prefix_routes() -> list[tuple[str, dict[str, Handler]]]:
    return [
        ("/api/blobs/", {"HEAD": routes_models.blob_head, "POST": routes_models.blob_post}),
        ("/v1/models/", {"GET": routes_openai.model}),
    ]


class SimApp:
    """ASGI callable; owns the `Simulator`, its engine and the model store directory.

    Building it prepares the engine (for llama.cpp: checks Node and the npm packages,
    assembles and checks the weights), so a missing piece fails here, before serving, with
    `EngineUnavailable`.
    """

    def __init__(self, config: SimSettings) -> None:
        self.config = config
        engine = engine_for(config)
        self._tmp: Path | None = None
        if config.models_dir is not None:
            root = config.models_dir
        else:
            self._tmp = root = Path(tempfile.mkdtemp(prefix="farm-sim-models-"))
        if isinstance(engine, SyntheticEngine):
            store = Store(root)
            if not config.empty_store:
                name = parse_name(DEFAULT_MODEL)
                entry = find(name) if name else None
                if entry is not None and name is not None and store.get(name) is None:
                    store.install(entry)
        else:
            engine.stock(root)  # before the store reads its directory
            store = Store(root)
        self.sim = Simulator(config, store, engine)
        self._routes = _routes()
        self._prefixes = _prefix_routes()
        self._started = False
        self._check_host = is_loopback_bind(config.host)

    def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            self.sim.engine.start()
            self.sim.scheduler.start()

    async def close(self) -> None:
        """Stop the scheduler and the engine, and remove a temporary store."""
        if self._started:
            await self.sim.scheduler.close()
            await self.sim.engine.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self._ensure_started()
        exchange = Exchange(scope, receive, send)
        try:
            await self._dispatch(exchange)
        except ClientGone:
            log.info("%s %s: client went away", exchange.method, exchange.path)
        except ApiError as exc:
            if not exchange.started:
                await exchange.error(exc.status, exc.message)
        except Exception:  # the per-request boundary: log it, answer 500, keep serving
            log.exception("%s %s failed", exchange.method, exchange.path)
            if not exchange.started:
                await exchange.error(500, "internal error in the simulator")
        finally:
            exchange.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._ensure_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(self, exchange: Exchange) -> None:
        if self._check_host and not host_allowed(exchange.headers.get("host", "")):
            await exchange.respond(403, b"", None)
            return
        origin = exchange.headers.get("origin")
        if origin is not None:
            if not origin_allowed(origin, self.config.origins):
                await exchange.respond(403, b"", None)
                return
            exchange.extra_headers += [
                (b"access-control-allow-origin", origin.encode()),
                (b"vary", b"Origin"),
            ]
            if exchange.method == "OPTIONS":
                exchange.extra_headers += [
                    (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                    (b"access-control-max-age", b"43200"),
                ]
                await exchange.respond(204, b"", None)
                return
        methods = self._match(exchange.path)
        if methods is None:
            await exchange.respond(404, b"404 page not found", TEXT_TYPE)
            return
        handler = methods.get(exchange.method)
        if handler is None:
            await exchange.respond(405, b"405 method not allowed", TEXT_TYPE)
            return
        await handler(self.sim, exchange)

    def _match(self, path: str) -> dict[str, Handler] | None:
        if path in self._routes:
            return self._routes[path]
        for prefix, methods in self._prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return methods
        return None


def create_app(config: SimSettings) -> SimApp:
    """Build the simulator's ASGI app for this configuration."""
    return SimApp(config)
