"""One request's record (`Exchange`): what the access-log line and the metrics report."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from farm.proxy.admission import Admitted
from farm.proxy.metrics import ProxyMetrics, route_label
from farm.proxy.pool import Backend

access_logger = logging.getLogger("farm.proxy.access")


@dataclass(slots=True)
class Exchange:
    """What happened to one request: feeds the access log line and the metrics."""

    method: str
    path: str
    started: float
    model: str | None = None
    backend: Backend | None = None
    status: int = 0
    ttfb_s: float | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    response_started: bool = False
    stream_kind: str = ""  # "ndjson", "sse", "other" once a streamed response has started
    outcome: str = "ok"
    admitted: Admitted | None = None  # with named keys: the principal, its slot and tally


def record_exchange(ex: Exchange, now: float, metrics: ProxyMetrics, access_log: bool) -> None:
    """Count one finished request in the metrics and write its access-log line."""
    status = ex.status if ex.response_started else 499
    metrics.observe(
        route_label(ex.path), ex.method, str(status), ex.ttfb_s, ex.bytes_out, ex.bytes_in
    )
    if access_log and access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "%s %s %d model=%s backend=%s ttfb_ms=%s duration_ms=%.1f bytes=%d outcome=%s",
            ex.method,
            ex.path,
            status,
            ex.model or "-",
            ex.backend.url if ex.backend else "-",
            "-" if ex.ttfb_s is None else f"{ex.ttfb_s * 1000:.1f}",
            (now - ex.started) * 1000,
            ex.bytes_out,
            ex.outcome,
        )
