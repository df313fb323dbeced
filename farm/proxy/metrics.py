"""Prometheus metrics for one proxy instance, in a registry of its own (no global state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from farm.proxy.pool import BackendPool

_KNOWN_ROUTES = frozenset(
    {
        "/",
        "/api/version",
        "/api/tags",
        "/api/ps",
        "/api/show",
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/api/pull",
        "/api/push",
        "/api/create",
        "/api/copy",
        "/api/delete",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/responses",
        "/v1/messages",
    }
)
TTFB_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def route_label(path: str) -> str:
    """A bounded label for `path`: known routes as is, parameters folded, the rest "other"."""
    if path in _KNOWN_ROUTES:
        return path
    if path.startswith("/api/blobs/"):
        return "/api/blobs/:digest"
    if path.startswith("/v1/models/"):
        return "/v1/models/:model"
    return "other"


class _PoolCollector(Collector):
    """In-flight requests and backend state, read from the pool at scrape time."""

    def __init__(self, pool: BackendPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        total = GaugeMetricFamily("farm_proxy_in_flight", "Requests being forwarded now")
        total.add_metric([], self._pool.in_flight)
        per = GaugeMetricFamily(
            "farm_proxy_backend_in_flight",
            "Requests being forwarded now, per backend",
            labels=["backend"],
        )
        up = GaugeMetricFamily(
            "farm_proxy_backend_up", "1 when the backend is in rotation", labels=["backend"]
        )
        for b in self._pool.backends:
            per.add_metric([b.url], b.in_flight)
            up.add_metric([b.url], 1 if b.up else 0)
        for b in self._pool.draining:  # out of rotation, still finishing its streams
            per.add_metric([b.url], b.in_flight)
            up.add_metric([b.url], 0)
        yield total
        yield per
        yield up


class ProxyMetrics:
    """The proxy's counters and histograms; `registry` is what `/metrics` renders."""

    def __init__(self, pool: BackendPool) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "farm_proxy_requests", "Requests answered", ["route", "method", "status"], registry=reg
        )
        self.ttfb = Histogram(
            "farm_proxy_ttfb_seconds",
            "Time from request arrival to the backend's first response byte",
            ["route"],
            buckets=TTFB_BUCKETS_S,
            registry=reg,
        )
        self.response_bytes = Counter(
            "farm_proxy_response_bytes",
            "Response body bytes streamed to clients",
            ["route"],
            registry=reg,
        )
        self.request_bytes = Counter(
            "farm_proxy_request_bytes",
            "Request body bytes streamed to backends",
            ["route"],
            registry=reg,
        )
        self.upstream_errors = Counter(
            "farm_proxy_upstream_errors",
            "Backend failures seen by the proxy",
            ["kind"],
            registry=reg,
        )
        self.failovers = Counter(
            "farm_proxy_failovers",
            "Requests sent to another backend after one failed before its first response byte",
            ["reason"],  # "connect": refused or not opened; "reset": closed after the request
            registry=reg,
        )
        self.client_aborts = Counter(
            "farm_proxy_client_aborts",
            "Clients that left before their response ended",
            ["phase"],
            registry=reg,
        )
        # Per named key (never a secret): what `invoke usage` totals, live.
        self.key_requests = Counter(
            "farm_proxy_key_requests", "Requests finished per key", ["key", "status"], registry=reg
        )
        self.key_prompt_tokens = Counter(
            "farm_proxy_key_prompt_tokens", "Prompt tokens per key", ["key"], registry=reg
        )
        self.key_output_tokens = Counter(
            "farm_proxy_key_output_tokens", "Output tokens per key", ["key"], registry=reg
        )
        self.key_queued = Gauge(
            "farm_proxy_key_queued", "Requests waiting in the fair queue", ["key"], registry=reg
        )
        self.key_active = Gauge(
            "farm_proxy_key_active", "Requests holding a slot", ["key"], registry=reg
        )
        self.key_refused = Counter(
            "farm_proxy_key_refused", "Requests refused with 429 per key", ["key"], registry=reg
        )
        reg.register(_PoolCollector(pool))
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}

    def observe(
        self, route: str, method: str, status: str, ttfb_s: float | None, sent: int, received: int
    ) -> None:
        """Record one finished request (label children cached: this runs per request)."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, status),
                self.ttfb.labels(route),
                self.response_bytes.labels(route),
                self.request_bytes.labels(route),
            )
        requests, ttfb, response_bytes, request_bytes = children
        requests.inc()
        if ttfb_s is not None:
            ttfb.observe(ttfb_s)
        if sent:
            response_bytes.inc(sent)
        if received:
            request_bytes.inc(received)
