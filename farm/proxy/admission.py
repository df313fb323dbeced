"""`Admission`: the proxy's side of named keys — who asks, whether they may start now, and
what they used.

Per request: `principal()` resolves the key (401/403 at once); `admit()` waits in the fair
queue for an inference slot (429 when the key's limits refuse); `tally()` watches the
response's tail for token counts; `finish()` records the usage row and frees the slot. The
usage row is committed before the response's final chunk is sent, so a request its client
saw finish is in the database even if the proxy is killed the next instant.

With no key database, or one without keys, and no `FARM_API_KEY`, `principal()` returns None
and nothing else runs: the hot path stays as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from farm.keys.records import UsageRow
from farm.proxy.accounting import Tally
from farm.proxy.errors import TooManyRequestsError
from farm.proxy.fairqueue import FairQueue, OverQuota, Ticket
from farm.proxy.metrics import ProxyMetrics
from farm.proxy.payload import INFERENCE_ROUTES
from farm.proxy.pool import BackendPool
from farm.proxy.settings import ProxySettings
from farm.proxy.tenants import Principal, Tenancy
from farm.proxy.usagewriter import UsageWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _KeySeries:
    """One key's metric children, looked up once (a `labels()` call costs microseconds)."""

    queued: Any
    active: Any
    refused: Any
    prompt: Any
    output: Any


@dataclass(slots=True)
class Admitted:
    """One request's admission state, carried on its `Exchange`."""

    principal: Principal
    ticket: Ticket | None = None
    tally: Tally | None = None
    first_byte: float | None = None
    finished: bool = False


class Admission:
    """Keys, the fair queue and usage, for one proxy."""

    def __init__(self, settings: ProxySettings, pool: BackendPool, metrics: ProxyMetrics) -> None:
        # A key database that cannot be used raises KeysError: `python -m farm.proxy` says so
        # in one line and does not start.
        self.tenancy = Tenancy(settings.api_key, settings.keys_db)
        self.usage = UsageWriter(settings.keys_db) if settings.keys_db is not None else None
        self._metrics = metrics
        self._series: dict[str, _KeySeries] = {}
        self._finished: dict[tuple[str, int], Any] = {}
        self._pool = pool
        self._slots = settings.num_parallel
        self.fair: FairQueue | None = None
        if settings.fair_queue and settings.num_parallel is not None:
            self.fair = FairQueue(self._capacity, idle_reserve_s=settings.fair_idle_reserve)
            if self.tenancy.store is not None:
                self.fair.seed_tokens(self.tenancy.store.tokens_since(time.time() - 60))
        elif settings.fair_queue and settings.keys_db is not None:
            logger.warning("fair queue off: the proxy was not told --num-parallel")

    def _capacity(self) -> int:
        # Backends that are down still count: a request for them fails fast with 502
        # rather than waiting here for a slot that cannot come.
        assert self._slots is not None
        return self._slots * max(1, len(self._pool.backends))

    def _of(self, name: str) -> _KeySeries:
        series = self._series.get(name)
        if series is None:
            m = self._metrics
            series = self._series[name] = _KeySeries(
                m.key_queued.labels(name),
                m.key_active.labels(name),
                m.key_refused.labels(name),
                m.key_prompt_tokens.labels(name),
                m.key_output_tokens.labels(name),
            )
        return series

    def close(self) -> None:
        """Write the pending usage rows and close the key database."""
        if self.usage is not None:
            self.usage.close()
        self.tenancy.close()

    def principal(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Admitted | None:
        """The request's principal, or None when keys are not in use. Raises 401/403."""
        who = self.tenancy.resolve(method, path, headers)
        return Admitted(who) if who is not None and who.named else None

    async def admit(self, adm: Admitted, path: str) -> None:
        """Wait for a slot when the request is inference; raises `TooManyRequestsError`."""
        if self.fair is None or path not in INFERENCE_ROUTES:
            return
        name, limits = adm.principal.name, adm.principal.limits
        series = self._of(name)
        try:
            adm.ticket = self.fair.try_admit(name, limits)
            if adm.ticket is None:
                series.queued.inc()
                try:
                    adm.ticket = await self.fair.admit(name, limits)
                finally:
                    series.queued.dec()
        except OverQuota as exc:
            series.refused.inc()
            raise TooManyRequestsError(str(exc), exc.retry_after_s) from exc
        series.active.inc()

    def tally(self, adm: Admitted, kind: str, now: float) -> Tally:
        """Start watching the response (its first byte is the usage row's TTFT)."""
        adm.first_byte = now
        adm.tally = Tally(kind)
        return adm.tally

    def finish(
        self, adm: Admitted, model: str | None, status: int, started: float, now: float
    ) -> UsageRow | None:
        """Free the slot and count the request; returns its usage row for `usage` to write
        (None when there is no database, or it was finished already)."""
        if adm.finished:
            return None
        adm.finished = True
        name = adm.principal.name
        series = self._of(name)
        tokens = adm.tally.tokens() if adm.tally is not None else None
        output = tokens.output if tokens else 0
        if adm.ticket is not None and self.fair is not None:
            self.fair.release(adm.ticket, output)
            series.active.dec()
        finished = self._finished.get((name, status))
        if finished is None:
            finished = self._finished[name, status] = self._metrics.key_requests.labels(
                name, str(status)
            )
        finished.inc()
        if tokens is not None:
            series.prompt.inc(tokens.prompt)
            series.output.inc(output)
        if self.usage is None:
            return None
        ttft = None if adm.first_byte is None else adm.first_byte - started
        row = UsageRow(
            key=name,
            model=model or "",
            prompt_tokens=tokens.prompt if tokens else 0,
            output_tokens=output,
            ttft_s=ttft,
            duration_s=now - started,
            status=status,
            finished_at=time.time(),
        )
        return row
