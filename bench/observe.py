"""The stream observer: turns one request's timestamped events into a `RequestRecord`.

The load-generating users call it with `time.perf_counter_ns()` stamps as bytes arrive; tests call
it with exact synthetic stamps. It holds no socket and reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import measure
from bench.quantiles import quantile
from bench.record import SCHEMA_VERSION, RequestRecord, Status
from bench.wire import Chunk, ServerStats
from farm.common.rfc3339 import parse_ns


@dataclass(frozen=True, slots=True)
class RequestLabels:
    """Who sent what: the row's identity columns."""

    run_id: str
    target: str
    streams: int
    worker_id: str
    user_index: int
    request_index: int
    phase: str
    prompt_id: str
    prompt_kind: str


@dataclass(frozen=True, slots=True)
class NknCounters:
    """Transport columns of a request that went through the NKN relay."""

    frames: int
    dm_bytes: int
    relay_t_ms: float | None
    seq_gaps: int
    out_of_order: int


class StreamObserver:
    """Accumulates one request: send, headers, each chunk, end; then `finish()` builds the row."""

    def __init__(
        self, labels: RequestLabels, t_intended_ns: int, t_send_ns: int, start_unix_ns: int
    ) -> None:
        self.labels = labels
        self.t_intended_ns = t_intended_ns
        self.t_send_ns = t_send_ns
        self.start_unix_ns = start_unix_ns
        self.t_headers_ns: int | None = None
        self.http_status: int | None = None
        self.t_first_content_ns: int | None = None
        self.first_created_at: str | None = None
        self.arrivals_ns: list[int] = []
        self.bytes_received = 0
        self.stats: ServerStats | None = None
        self.done_reason: str | None = None
        self.done = False
        self.error: str | None = None

    def on_headers(self, t_ns: int, status: int) -> None:
        """Status line and headers parsed."""
        self.t_headers_ns = t_ns
        self.http_status = status

    def on_chunk(self, t_ns: int, chunk: Chunk, n_bytes: int) -> None:
        """One decoded line arrived at `t_ns`."""
        self.bytes_received += n_bytes
        if chunk.error is not None:
            self.error = chunk.error
            return
        if chunk.has_text:
            if not self.arrivals_ns:
                self.first_created_at = chunk.created_at
            self.arrivals_ns.append(t_ns)
            if chunk.content and self.t_first_content_ns is None:
                self.t_first_content_ns = t_ns
        if chunk.stats is not None:
            self.stats = chunk.stats
        if chunk.done_reason:
            self.done_reason = chunk.done_reason
        if chunk.done:
            self.done = True

    def finish(
        self,
        t_end_ns: int,
        status: Status,
        error: str | None = None,
        nkn: NknCounters | None = None,
    ) -> RequestRecord:
        """Build the row; `status` is how the caller saw the request end."""
        first = self.arrivals_ns[0] if self.arrivals_ns else None
        last = self.arrivals_ns[-1] if self.arrivals_ns else None
        stats = self.stats
        n_srv = stats.eval_count if stats is not None and stats.eval_count > 0 else None
        n_tokens = n_srv if n_srv is not None else len(self.arrivals_ns)
        ttft = measure.interval_s(self.t_send_ns, first)
        e2e = (t_end_ns - self.t_send_ns) / measure.NS_PER_S
        tpot = measure.tpot_s(first, last, n_tokens)
        gaps = measure.gaps_s(self.arrivals_ns)
        decomp = None
        if stats is not None and stats.total_duration_ns > 0:
            decomp = measure.decompose(
                ttft,
                load_duration_ns=stats.load_duration_ns,
                prompt_eval_duration_ns=stats.prompt_eval_duration_ns,
                eval_duration_ns=stats.eval_duration_ns,
                eval_count=stats.eval_count,
                total_duration_ns=stats.total_duration_ns,
            )
        has_durations = stats is not None and stats.total_duration_ns > 0
        lab = self.labels
        return RequestRecord(
            schema_version=SCHEMA_VERSION,
            run_id=lab.run_id,
            target=lab.target,
            streams=lab.streams,
            worker_id=lab.worker_id,
            user_index=lab.user_index,
            request_index=lab.request_index,
            phase=lab.phase,
            prompt_id=lab.prompt_id,
            prompt_kind=lab.prompt_kind,
            start_unix_ns=self.start_unix_ns,
            send_lag_s=(self.t_send_ns - self.t_intended_ns) / measure.NS_PER_S,
            status=str(status),
            http_status=self.http_status,
            error=error if error is not None else self.error,
            ttfb_s=measure.interval_s(self.t_send_ns, self.t_headers_ns),
            ttft_s=ttft,
            ttfo_s=measure.interval_s(self.t_send_ns, self.t_first_content_ns),
            ttft_sched_s=measure.interval_s(self.t_intended_ns, first),
            last_token_s=measure.interval_s(self.t_send_ns, last),
            first_token_lag_s=self._first_token_lag_s(first),
            e2e_s=e2e,
            n_chunks=len(self.arrivals_ns),
            n_tokens_srv=n_srv,
            bytes_received=self.bytes_received,
            token_gaps_s=gaps,
            tpot_s=tpot,
            stream_tok_s=None if not tpot else 1.0 / tpot,
            e2e_tok_s=measure.rate_per_s(n_tokens, e2e) if n_tokens else None,
            icg_p50_s=quantile(gaps, 0.5) if gaps else None,
            icg_p99_s=quantile(gaps, 0.99) if gaps else None,
            icg_max_s=max(gaps) if gaps else None,
            tokens_per_chunk=(n_srv / len(self.arrivals_ns))
            if n_srv and self.arrivals_ns
            else None,
            token_mismatch=measure.tokens_mismatch(len(self.arrivals_ns), n_srv),
            done_reason=self.done_reason,
            prompt_eval_count=stats.prompt_eval_count if stats is not None else None,
            load_duration_ns=stats.load_duration_ns if has_durations and stats else None,
            prompt_eval_duration_ns=stats.prompt_eval_duration_ns
            if has_durations and stats
            else None,
            eval_duration_ns=stats.eval_duration_ns if has_durations and stats else None,
            total_duration_ns=stats.total_duration_ns if has_durations and stats else None,
            srv_wait_s=decomp.srv_wait_s if decomp else None,
            srv_ttft_s=decomp.srv_ttft_s if decomp else None,
            transport_ttft_s=decomp.transport_ttft_s if decomp else None,
            srv_decode_tok_s=(
                measure.rate_per_s(stats.eval_count, stats.eval_duration_ns / measure.NS_PER_S)
                if has_durations and stats
                else None
            ),
            nkn_frames=nkn.frames if nkn else None,
            nkn_dm_bytes=nkn.dm_bytes if nkn else None,
            nkn_relay_t_ms=nkn.relay_t_ms if nkn else None,
            nkn_seq_gaps=nkn.seq_gaps if nkn else None,
            nkn_out_of_order=nkn.out_of_order if nkn else None,
        )

    def _first_token_lag_s(self, first_ns: int | None) -> float | None:
        """Wall-clock arrival of the first token minus the server's `created_at` for it: the
        transport + client delay alone (meaningful when client and server share a clock)."""
        created = parse_ns(self.first_created_at)
        if created is None or first_ns is None:
            return None
        arrival_unix_ns = self.start_unix_ns + (first_ns - self.t_send_ns)
        return (arrival_unix_ns - created) / measure.NS_PER_S

    def end_status(self) -> tuple[Status, str | None]:
        """Classify a stream that ended on its own: ok, in-band error, or cut (no `done`)."""
        if self.http_status is not None and self.http_status != 200:
            return Status.HTTP_ERROR, self.error or f"HTTP {self.http_status}"
        if self.error is not None:
            return Status.STREAM_ERROR, self.error
        if not self.done:
            return Status.CUT, "stream ended without a done marker"
        return Status.OK, None
