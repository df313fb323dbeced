"""`NknTransport`: the `Transport` over nkn-sdk, supervising the Node bridge process.

One bridge process at a time runs the MultiClient. If it dies, or stops answering the periodic
self-probe (a DM to our own address), it is killed and restarted with exponential back-off;
the same seed gives the same address. Outgoing DMs wait in a bounded queue while it is down
and stay there until the bridge confirms it wrote them, so none within the bound is lost (a DM
in flight when a bridge dies may be sent twice; relay frames carry ids and `seq` for that).
The bridge confirms a DM only once its bytes have left the process, so a stalled NKN link
shows here as DMs that stay unconfirmed, within the outbox's count and byte bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import AsyncIterator

from relay.bridge.config import BridgeConfig
from relay.bridge.errors import (
    BridgeClosedError,
    BridgeError,
    BridgeStartError,
    MessageTooLargeError,
)
from relay.bridge.outbox import Outbox, Outgoing
from relay.bridge.process import BridgeProcess, check_installed
from relay.bridge.protocol import (
    Acked,
    BridgeFailure,
    Message,
    ProbeCommand,
    ProbeEcho,
    Ready,
    SendCommand,
    SendError,
    Sent,
    Unacked,
)
from relay.transport import Acked as AckFuture
from relay.transport import Incoming, Sending

log = logging.getLogger(__name__)

# nkn-sdk refuses envelopes over 4,000,000 bytes; keep room for the envelope, the
# encryption overhead and the destination address it counts in.
MAX_PAYLOAD_BYTES = 3_990_000
# A DM whose send fails this many times (with a working connection in between) is dropped.
MAX_SEND_ATTEMPTS = 5
# At most this many queued DMs share one write to the bridge's stdin.
WRITE_BATCH_DMS = 64


def restart_delay_s(failures: int, min_s: float, max_s: float) -> float:
    """Back-off before the next bridge start: `min_s` after a bridge that had connected (or
    after the first failure), doubling with each further start that never connected, capped."""
    # The exponent is capped: 2**1100 no longer fits a float (a node down for hours).
    return float(min(max_s, min_s * 2 ** min(max(0, failures - 1), 32)))


class NknTransport:
    """Sends and receives NKN DMs for one identity through `bridge.js` (implements Transport)."""

    def __init__(self, config: BridgeConfig) -> None:
        self._config = config
        self._address: str | None = None
        self._outbox = Outbox(config.queue_limit, config.queue_limit_b)
        # ACKs asked for by DMs the bridge already wrote, by DM id.
        self._acks: dict[int, AckFuture] = {}
        # Unbounded on purpose: blocking here would also stall probe echoes and `sent` events.
        self._incoming: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._healthy = asyncio.Event()  # the bridge is ready and its last probe came back
        self._probe_now = asyncio.Event()
        self._probes: dict[str, asyncio.Future[None]] = {}
        self._settled = asyncio.Event()  # the first start succeeded or failed
        self._start_error: BaseException | None = None
        self._last_failure: str | None = None
        self._proc: BridgeProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.restarts = 0
        self.connect_s: float | None = None
        self.bridge_exit_code: int | None = None

    @property
    def address(self) -> str:
        """Our NKN address (`[identifier.]pubkeyhex`); valid after `start()`."""
        if self._address is None:
            raise BridgeClosedError("the NKN transport is not started")
        return self._address

    @property
    def outbox_b(self) -> int:
        """Bytes of DMs queued or in flight, not yet confirmed written by the bridge."""
        return self._outbox.size_b

    @property
    def bridge_pid(self) -> int | None:
        """The running bridge's process id (None while it is down)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> str:
        """Start the bridge and return our address once the NKN node accepted us."""
        if self._task is not None:
            raise BridgeClosedError("the NKN transport was already started")
        check_installed(self._config)
        self._task = asyncio.create_task(self._supervise(), name="nkn-bridge-supervisor")
        await self._settled.wait()
        if self._start_error is not None:
            await self._task
            self._closing = True
            self._incoming.put_nowait(None)
            raise self._start_error
        log.info("NKN ready: %s (%.0f ms)", self.address, (self.connect_s or 0) * 1000)
        return self.address

    async def send(self, dest: str, payload: str, *, ack: AckFuture | None = None) -> Sending:
        """Queue one DM for `dest`; returns at once (fire and forget, `no_reply`).

        The returned future completes once the bridge wrote the DM to the node (or gave up).
        With `ack`, the DM asks for the receiver's delivery ACK instead of `no_reply`.
        """
        if self._closing or self._task is None:
            raise BridgeClosedError("the NKN transport is not running")
        try:
            size = len(payload.encode())
        except UnicodeEncodeError as exc:
            raise BridgeError(f"DM payload is not valid Unicode text: {exc}") from exc
        if size > MAX_PAYLOAD_BYTES:
            raise MessageTooLargeError(
                f"DM of {size} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte NKN message limit"
            )
        return self._outbox.put(dest, payload, size_b=size, ack=ack)

    async def incoming(self) -> AsyncIterator[Incoming]:
        """DMs addressed to us, in arrival order; ends when the transport closes."""
        while (item := await self._incoming.get()) is not None:
            yield item

    async def close(self) -> None:
        """Flush queued DMs (up to `close_timeout_s`), stop the bridge and end `incoming()`."""
        if self._task is None or self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outbox.wait_drained(), self._config.close_timeout_s)
        self._closing = True
        if self._outbox:
            log.warning("closing with %d DMs unsent", len(self._outbox))
        proc = self._proc
        if proc is not None:
            await proc.close(self._config.close_timeout_s)
            self.bridge_exit_code = proc.returncode
            # With the process gone its event stream ends and the supervisor returns by itself.
            await asyncio.wait({self._task}, timeout=self._config.close_timeout_s)
        self._task.cancel()
        # The supervisor already logged whatever stopped it; closing must still finish.
        with contextlib.suppress(asyncio.CancelledError, BridgeError, OSError):
            await self._task
        self._outbox.abandon()
        self._lose_acks()
        self._incoming.put_nowait(None)

    # --- supervision -------------------------------------------------------------------------

    def _rpc_addr(self, attempt: int) -> str | None:
        addrs = self._config.rpc_server_addrs
        return addrs[attempt % len(addrs)] if addrs else None

    async def _supervise(self) -> None:
        try:
            await self._restart_loop()
        except (OSError, BridgeError) as exc:
            if self._settled.is_set():
                log.error("NKN bridge supervisor stopped: %s", exc)
                raise
            self._start_error = BridgeStartError(f"cannot start the NKN bridge: {exc}")
        finally:
            self._healthy.clear()
            self._settled.set()

    async def _restart_loop(self) -> None:
        failures = 0
        for attempt in itertools.count():
            rpc = self._rpc_addr(attempt)
            proc = await BridgeProcess.spawn(self._config, rpc)
            self._proc = proc
            became_ready = await self._run(proc)
            self._proc = None
            self._healthy.clear()
            self._outbox.requeue_inflight()
            self._lose_acks()
            if self._closing:
                return
            if not self._settled.is_set() and attempt + 1 >= max(
                1, len(self._config.rpc_server_addrs)
            ):
                reason = self._last_failure or proc.stderr_tail() or "no output"
                self._start_error = BridgeStartError(
                    f"NKN bridge did not connect via {rpc or 'the default seed'}"
                    f" (exit {proc.returncode}): {reason}"
                )
                self._settled.set()
                return
            failures = 0 if became_ready else failures + 1
            delay = restart_delay_s(
                failures, self._config.restart_backoff_min_s, self._config.restart_backoff_max_s
            )
            log.warning(
                "NKN bridge exited (code %s: %s); restarting in %.1f s",
                proc.returncode,
                proc.stderr_tail()[-300:] or "no output",
                delay,
            )
            await asyncio.sleep(delay)
            self.restarts += 1

    async def _run(self, proc: BridgeProcess) -> bool:
        """Serve one bridge process until it exits; True if it ever became ready."""
        ready = asyncio.Event()
        helpers = [
            asyncio.create_task(self._writer(proc)),
            asyncio.create_task(self._prober(proc)),
            asyncio.create_task(self._ready_watchdog(proc, ready)),
        ]
        try:
            async for event in proc.events():
                self._on_event(event, ready)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self.bridge_exit_code = await proc.reap(self._config.close_timeout_s)
        return ready.is_set()

    async def _ready_watchdog(self, proc: BridgeProcess, ready: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(ready.wait(), self._config.ready_timeout_s)
        except TimeoutError:
            log.warning("NKN bridge not ready after %.0f s", self._config.ready_timeout_s)
            proc.kill()

    def _on_event(self, event: object, ready: asyncio.Event) -> None:
        match event:
            case Message(src, data):
                self._incoming.put_nowait(Incoming(src, data))
            case Sent(msg_id):
                item = self._outbox.confirm(msg_id)
                if item is not None and item.ack is not None and not item.ack.done():
                    self._acks[msg_id] = item.ack
            case SendError(msg_id, error, permanent):
                self._on_send_error(msg_id, error, permanent)
            case Acked(msg_id):
                self._settle_ack(msg_id, True)
            case Unacked(msg_id, error):
                log.info("no ACK for DM %d: %s", msg_id, error)
                self._settle_ack(msg_id, False)
            case ProbeEcho(nonce):
                future = self._probes.pop(nonce, None)
                if future is not None and not future.done():
                    future.set_result(None)
            case Ready(addr, connect_ms):
                self._on_ready(addr, connect_ms, ready)
            case BridgeFailure(error, fatal):
                if fatal:
                    self._last_failure = error
                log.log(logging.ERROR if fatal else logging.WARNING, "NKN bridge: %s", error)

    def _on_ready(self, addr: str, connect_ms: int, ready: asyncio.Event) -> None:
        if self._address is not None and addr != self._address:
            log.error("NKN bridge came back as %s, expected %s", addr, self._address)
        elif self._address is not None:
            log.info("NKN bridge back after a restart: %s (%d ms)", addr, connect_ms)
        self._address = addr
        self.connect_s = connect_ms / 1000
        ready.set()
        self._healthy.set()
        self._settled.set()

    def _settle_ack(self, msg_id: int, acked: bool) -> None:
        # The ACK may beat the bridge's `sent` (which waits for the socket to drain).
        ack = self._acks.pop(msg_id, None)
        item = self._outbox.in_flight(msg_id) if ack is None else None
        if item is not None:
            ack, item.ack = item.ack, None
        if ack is not None and not ack.done():
            ack.set_result(acked)

    def _lose_acks(self) -> None:
        """The bridge that waited for these ACKs is gone: nobody can match them any more."""
        for ack in self._acks.values():
            ack.cancel()
        self._acks.clear()

    def _on_send_error(self, msg_id: int, error: str, permanent: bool) -> None:
        item = self._outbox.failed(msg_id)
        if item is None:
            return
        if permanent or item.attempts >= MAX_SEND_ATTEMPTS:
            log.error("dropped DM to %s after %d tries: %s", item.dest, item.attempts, error)
            self._outbox.give_up(item)
            return
        # Likely no subclient is connected: hold sending until a probe proves the path again.
        log.warning("DM to %s failed (%s); retrying after a probe", item.dest, error)
        self._outbox.retry_first(item)
        self._healthy.clear()
        self._probe_now.set()

    async def _writer(self, proc: BridgeProcess) -> None:
        while True:
            await self._healthy.wait()
            # Whatever queued up meanwhile goes in one pipe write instead of one per DM.
            items = await self._outbox.take_many(WRITE_BATCH_DMS)
            lines = b"".join(
                SendCommand(i.id, i.dest, i.payload, ack=_wants_ack(i)).encode() for i in items
            )
            if not await proc.write(lines):
                return  # the process is gone; _run requeues what is in flight

    async def _prober(self, proc: BridgeProcess) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_now.wait(), self._config.probe_interval_s)
            self._probe_now.clear()
            if self._address is None:
                continue
            if await self._probe(proc):
                failures = 0
                self._healthy.set()
                continue
            failures += 1
            log.warning("NKN self-probe %d/%d failed", failures, self._config.probe_failures_max)
            if failures >= self._config.probe_failures_max:
                log.error("NKN connection looks dead; restarting the bridge")
                proc.kill()
                return
            self._probe_now.set()

    async def _probe(self, proc: BridgeProcess) -> bool:
        nonce = os.urandom(8).hex()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probes[nonce] = future
        try:
            if not await proc.write(ProbeCommand(nonce).encode()):
                return False
            await asyncio.wait_for(future, self._config.probe_timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._probes.pop(nonce, None)


def _wants_ack(item: Outgoing) -> bool:
    return item.ack is not None and not item.ack.done()
