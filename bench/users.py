"""Locust users that stream from the farm: NDJSON/SSE over HTTP, and NDJSON through the NKN relay.

With `bench/locustfile.py`, the only modules that import locust or gevent. Each user owns its
client and fires locust's `request` event twice per request (TTFT and end-to-end, so locust's
own stats show both), while the exact row goes to the process's `BenchRuntime`.

Lines are read with geventhttpclient's `readline(b"\\n")`, which returns as soon as one line is
in: locust's `FastHttpSession.iter_lines` waits for 1024 bytes and delays TTFT by several
Ollama-sized lines.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Callable
from http.client import HTTPException
from subprocess import PIPE
from typing import Any

import gevent
import gevent.lock
import gevent.queue
import gevent.subprocess
from gevent import GreenletExit
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL
from locust import User, constant

from bench.child_settings import NknPeerSettings
from bench.errors import RunError, WireError
from bench.observe import NknCounters, RequestLabels, StreamObserver
from bench.payload import Payload
from bench.prompts import Prompt
from bench.record import RequestRecord, Status
from bench.runtime import BenchRuntime
from bench.wire import Chunk, decode_ndjson, decode_sse
from farm.settings import to_argv

log = logging.getLogger(__name__)
# Error bodies are short JSON; cap what is read so a misbehaving server cannot make us buffer.
_ERROR_BODY_MAX_B = 4096
_RETRY_PAUSE_S = 0.1


def runtime_of(user: User) -> BenchRuntime:
    """The process's BenchRuntime (hung on the Environment by the locustfile's init hook)."""
    runtime: BenchRuntime = user.environment.bench_runtime
    return runtime


class BenchUser(User):
    """Base for every bench user: closed loop (or Poisson slots), labels, rows, locust events."""

    abstract = True
    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.runtime = runtime_of(self)
        self.user_index = self.runtime.next_user_index()
        self.request_index = 0

    def intended_ns(self) -> int:
        """When this request should go out: now (closed loop) or the next Poisson arrival."""
        schedule = self.runtime.schedule
        if schedule is None:
            return time.perf_counter_ns()
        intended = schedule.next_ns()
        delay_s = (intended - time.perf_counter_ns()) / 1e9
        if delay_s > 0:
            gevent.sleep(delay_s)
        return intended

    def labels(self, prompt: Prompt) -> RequestLabels:
        """The identity columns of this user's next row."""
        spec = self.runtime.spec
        return RequestLabels(
            run_id=spec.run_id,
            target=spec.target,
            streams=spec.streams,
            worker_id=self.runtime.worker_id,
            user_index=self.user_index,
            request_index=self.request_index,
            phase=self.runtime.phase(self.request_index),
            prompt_id=prompt.id,
            prompt_kind=prompt.kind,
        )

    def next_request(self) -> tuple[Prompt, Payload] | None:
        """Take the next prompt, or idle (the quota is spent; `bench.run` ends the process)."""
        taken = self.runtime.take()
        if taken is None:
            gevent.sleep(0.5)
            return None
        _, prompt, payload = taken
        return prompt, payload

    def emit(self, row: RequestRecord, name: str) -> None:
        """Store the row and fire locust's request event for TTFT and end-to-end."""
        self.runtime.record(row)
        self.request_index += 1
        events = self.environment.events.request
        failure = RuntimeError(f"{row.status}: {row.error}") if row.is_error else None
        if row.ttft_s is not None:
            events.fire(
                request_type="TTFT",
                name=name,
                response_time=row.ttft_s * 1000,
                response_length=0,
                exception=None,
                context={},
            )
        if row.status != Status.INCOMPLETE:
            events.fire(
                request_type="E2E",
                name=name,
                response_time=row.e2e_s * 1000,
                response_length=row.bytes_received,
                exception=failure,
                context={},
            )


class StreamClient:
    """One keep-alive HTTP/1.1 connection that yields response lines as they arrive."""

    def __init__(self, base_url: str, timeout_s: float, api_key: str | None) -> None:
        url = URL(base_url)
        self._base_path = url.path.rstrip("/")
        self._http = HTTPClient.from_url(
            url, concurrency=1, connection_timeout=10.0, network_timeout=timeout_s, headers={}
        )
        # identity: a compressing proxy could otherwise batch the stream into large chunks.
        self._headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "ollama-farm-bench",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def stream(self, obs: StreamObserver, payload: Payload, clock: Callable[[], int]) -> None:
        """Send `payload`, feed headers and each decoded line into `obs` with arrival stamps."""
        decode = decode_ndjson if payload.framing == "ndjson" else decode_sse
        body = json.dumps(payload.body).encode()
        response = self._http.request(
            "POST", self._base_path + payload.path, body=body, headers=self._headers
        )
        obs.on_headers(clock(), response.status_code)
        try:
            if response.status_code != 200:
                text = response.read(_ERROR_BODY_MAX_B).decode("utf-8", "replace")
                obs.error = f"HTTP {response.status_code}: {text.strip()[:200]}"
                return
            while True:
                line = response.readline(b"\n")
                t_ns = clock()
                if not line:
                    return
                chunk: Chunk | None = decode(line) if line.strip() else None
                if chunk is not None:
                    obs.on_chunk(t_ns, chunk, len(line))
        finally:
            response.release()

    def close(self) -> None:
        """Close the connection."""
        self._http.close()


class HttpStreamUser(BenchUser):
    """A stream against an HTTP target (the backend directly or the proxy)."""

    abstract = True

    def on_start(self) -> None:
        """Open this user's own connection (no shared pool, so no hidden concurrency cap)."""
        cfg = self.runtime.spec.config
        url = self.runtime.spec.url or cfg.proxy_endpoint
        self.stream_client = StreamClient(url, cfg.timeout, cfg.api_key)

    def on_stop(self) -> None:
        """Close the connection."""
        self.stream_client.close()

    def run_one(self) -> None:
        """Send one request and record it, whatever happens to it."""
        taken = self.next_request()
        if taken is None:
            return
        prompt, payload = taken
        t_intended = self.intended_ns()
        obs = StreamObserver(
            self.labels(prompt), t_intended, time.perf_counter_ns(), time.time_ns()
        )
        status, error = Status.OK, None
        self.runtime.in_flight += 1
        try:
            self.stream_client.stream(obs, payload, time.perf_counter_ns)
            status, error = obs.end_status()
        except GreenletExit:
            self.emit(obs.finish(time.perf_counter_ns(), Status.INCOMPLETE), payload.path)
            raise
        except TimeoutError as exc:
            status, error = (
                Status.TIMEOUT,
                f"no data for {self.runtime.spec.config.timeout}s: {exc}",
            )
        except WireError as exc:
            status, error = Status.STREAM_ERROR, f"bad stream line: {exc}"
        except (HTTPException, OSError) as exc:
            # Before the headers: could not connect or the server hung up; after: a cut stream.
            status = Status.CONNECT_ERROR if obs.http_status is None else Status.CUT
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.runtime.in_flight -= 1
        self.emit(obs.finish(time.perf_counter_ns(), status, error), payload.path)
        if status == Status.CONNECT_ERROR:
            # A dead or refusing target answers in microseconds: pause so the error rows
            # don't swamp the run (and the CPU) while it is down.
            gevent.sleep(_RETRY_PAUSE_S)


class NknPeer:
    """The worker's link to its `python -m bench.nkn_peer` process (one per locust process).

    A reader greenlet routes the peer's events to one gevent queue per request, so a user waits
    on its own queue and never blocks the hub; the asyncio relay client lives in the peer.
    """

    def __init__(self, settings: NknPeerSettings, start_timeout_s: float = 60.0) -> None:
        argv = [sys.executable, "-m", "bench.nkn_peer", *to_argv(settings)]
        self._proc = gevent.subprocess.Popen(argv, stdin=PIPE, stdout=PIPE, bufsize=0)
        self._queues: dict[str, gevent.queue.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count()
        with gevent.Timeout(start_timeout_s, RunError("NKN peer did not become ready")):
            first = json.loads(self._proc.stdout.readline() or b'{"ev":"fatal","error":"exited"}')
        if first.get("ev") != "ready":
            raise RunError(f"NKN peer failed: {first.get('error')}")
        self.address = str(first["address"])
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        for raw in self._proc.stdout:
            event = json.loads(raw)
            queue = self._queues.get(str(event.get("id")))
            if queue is not None:
                queue.put(event)
        for queue in self._queues.values():
            queue.put(
                {
                    "ev": "end",
                    "t_ns": time.perf_counter_ns(),
                    "ok": False,
                    "error": "NKN peer exited",
                }
            )

    def open(
        self, payload: Payload, timeout_s: float
    ) -> tuple[str, gevent.queue.Queue[dict[str, Any]]]:
        """Start a relayed stream; return its id and the queue its events arrive on."""
        rid = f"b{next(self._ids)}"
        queue: gevent.queue.Queue[dict[str, Any]] = gevent.queue.Queue()
        self._queues[rid] = queue
        op = {
            "op": "stream",
            "id": rid,
            "path": payload.path,
            "json": payload.body,
            "timeout_ms": int(timeout_s * 1000),
        }
        self._proc.stdin.write((json.dumps(op) + "\n").encode())
        return rid, queue

    def close_request(self, rid: str, cancel: bool) -> None:
        """Forget a request (and ask the relay to cancel it when it is still running)."""
        self._queues.pop(rid, None)
        if cancel and self._proc.poll() is None:
            self._proc.stdin.write((json.dumps({"op": "cancel", "id": rid}) + "\n").encode())


class NknStreamUser(BenchUser):
    """A stream through the NKN relay: the request goes out as DMs, NDJSON lines come back."""

    abstract = True

    def peer(self) -> NknPeer:
        """This process's NKN peer (started by the first NKN user)."""
        env = self.environment
        # Every NKN user of this process shares one peer; the first one starts it while the
        # others wait on this lock (setdefault does not yield, so only one lock is ever made).
        lock = env.__dict__.setdefault("bench_nkn_lock", gevent.lock.BoundedSemaphore())
        with lock:
            if getattr(env, "bench_nkn_peer", None) is None:
                env.bench_nkn_peer = NknPeer(self._peer_settings())
        peer: NknPeer = env.bench_nkn_peer
        return peer

    def on_start(self) -> None:
        """Start (or share) the peer before the first request, so its start-up of NKN is
        never inside a measured request."""
        try:
            self.peer()
        except RunError as exc:
            log.warning("NKN peer failed to start: %s", exc)

    def _peer_settings(self) -> NknPeerSettings:
        cfg = self.runtime.spec.config
        if cfg.nkn_loopback:
            return NknPeerSettings(loopback=cfg.proxy_endpoint)
        if not cfg.relay_address:
            raise RunError("--target nkn needs --relay-address (or --nkn-loopback)")
        return NknPeerSettings(relay_address=cfg.relay_address, nkn_rpc=cfg.nkn_rpc)

    def run_one(self) -> None:
        """Send one request through the relay and record it."""
        taken = self.next_request()
        if taken is None:
            return
        prompt, payload = taken
        try:
            peer = self.peer()
        except RunError as exc:
            # Recorded like any failed request; the pause keeps a dead peer from spinning.
            now = time.perf_counter_ns()
            obs = StreamObserver(self.labels(prompt), now, now, time.time_ns())
            self.emit(obs.finish(now, Status.CONNECT_ERROR, str(exc)), "nkn " + payload.path)
            gevent.sleep(1.0)
            return
        t_intended = self.intended_ns()
        obs = StreamObserver(
            self.labels(prompt), t_intended, time.perf_counter_ns(), time.time_ns()
        )
        rid, queue = peer.open(payload, self.runtime.spec.config.timeout)
        self.runtime.in_flight += 1
        finished = False
        try:
            end = self._consume(obs, queue)
            finished = True
        except gevent.queue.Empty:
            t_out = self.runtime.spec.config.timeout
            end = {"t_ns": time.perf_counter_ns(), "error": f"no data for {t_out}s", "timeout": 1}
        except GreenletExit:
            self.runtime.in_flight -= 1
            self.emit(obs.finish(time.perf_counter_ns(), Status.INCOMPLETE), "nkn " + payload.path)
            raise
        finally:
            peer.close_request(rid, cancel=not finished)
        self.runtime.in_flight -= 1
        if obs.http_status is None and end.get("status"):
            obs.on_headers(int(end["t_ns"]), int(end["status"]))
        status, error = obs.end_status()
        relay_error = end.get("error")
        if relay_error:
            # The relay's own word wins: a refusal before any line (busy, forbidden, an
            # upstream error status) is like a gateway's 5xx; after lines it is a cut stream.
            error = str(relay_error)
            if end.get("timeout"):
                status = Status.TIMEOUT
            elif not obs.arrivals_ns:
                status = Status.HTTP_ERROR
            elif status == Status.OK or status == Status.CUT:
                status = Status.CUT
        nkn = NknCounters(
            frames=int(end.get("frames") or 0),
            dm_bytes=int(end.get("dm_bytes") or 0),
            relay_t_ms=end.get("t_ms"),
            seq_gaps=int(end.get("gaps") or 0),
            out_of_order=int(end.get("out_of_order") or 0),
        )
        self.emit(obs.finish(int(end["t_ns"]), status, error, nkn), "nkn " + payload.path)

    def _consume(
        self, obs: StreamObserver, queue: gevent.queue.Queue[dict[str, Any]]
    ) -> dict[str, Any]:
        """Feed the peer's events into `obs` until the end event, which is returned."""
        timeout_s = self.runtime.spec.config.timeout
        while True:
            event = queue.get(timeout=timeout_s)
            if event["ev"] == "begin":
                obs.on_headers(int(event["t_ns"]), int(event.get("status") or 200))
            elif event["ev"] == "line":
                line = str(event["line"])
                if line.strip():
                    obs.on_chunk(int(event["t_ns"]), decode_ndjson(line), len(line) + 1)
            elif event["ev"] == "end":
                end: dict[str, Any] = event
                return end
