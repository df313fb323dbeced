"""The result record: one frozen row per measured request, with the unit in every numeric name.

Rows are written as JSON lines while a run is going (one file per load-generator process) and
become the Parquet/CSV tables of the report. Errors, cut streams and requests still in flight
when the run stopped are rows too, with their status, so nothing is silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Bumped whenever a column changes meaning or disappears.
SCHEMA_VERSION = 1


class Status(StrEnum):
    """How a request ended (`incomplete`: still in flight when the run stopped; not an error)."""

    OK = "ok"
    HTTP_ERROR = "http_error"
    STREAM_ERROR = "stream_error"
    CUT = "cut"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    INCOMPLETE = "incomplete"


ERROR_STATUSES = frozenset(
    {Status.HTTP_ERROR, Status.STREAM_ERROR, Status.CUT, Status.TIMEOUT, Status.CONNECT_ERROR}
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the client saw it, joined with the server's own accounting.

    Client times are seconds after `t_send` (monotonic clock); `start_unix_ns` is the wall-clock
    label of `t_send`, so rows from several workers can be lined up.
    """

    schema_version: int
    run_id: str
    target: str
    streams: int
    worker_id: str
    user_index: int
    request_index: int
    phase: str
    prompt_id: str
    prompt_kind: str
    start_unix_ns: int
    send_lag_s: float
    status: str
    http_status: int | None
    error: str | None
    ttfb_s: float | None
    ttft_s: float | None
    ttfo_s: float | None
    ttft_sched_s: float | None
    last_token_s: float | None
    first_token_lag_s: float | None
    e2e_s: float
    n_chunks: int
    n_tokens_srv: int | None
    bytes_received: int
    token_gaps_s: tuple[float, ...]
    tpot_s: float | None
    stream_tok_s: float | None
    e2e_tok_s: float | None
    icg_p50_s: float | None
    icg_p99_s: float | None
    icg_max_s: float | None
    tokens_per_chunk: float | None
    token_mismatch: bool
    done_reason: str | None
    prompt_eval_count: int | None
    load_duration_ns: int | None
    prompt_eval_duration_ns: int | None
    eval_duration_ns: int | None
    total_duration_ns: int | None
    srv_wait_s: float | None
    srv_ttft_s: float | None
    transport_ttft_s: float | None
    srv_decode_tok_s: float | None
    nkn_frames: int | None = None
    nkn_dm_bytes: int | None = None
    nkn_relay_t_ms: float | None = None
    nkn_seq_gaps: int | None = None
    nkn_out_of_order: int | None = None

    @property
    def is_error(self) -> bool:
        """True for every failure status (`incomplete` is not a failure)."""
        return self.status in ERROR_STATUSES

    def to_json(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """Inverse of `to_json` after `json.loads`; unknown keys are an error."""
        data = dict(data)
        data["token_gaps_s"] = tuple(data.get("token_gaps_s") or ())
        return cls(**data)


COLUMNS = tuple(f.name for f in dataclasses.fields(RequestRecord))
