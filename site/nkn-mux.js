// The relay's fast path (mux/1), peer side. One `relay.mux` message carries items (accepted,
// begin, lines, end) of several of this page's streams, numbered n = 1, 2, 3… per relay epoch
// `m`. `MuxInbox` hands messages on strictly in n order, once each: duplicates are dropped and
// a message that overtook a lost one waits in the reorder buffer until the relay resent it. It
// acknowledges (`relay.mux.ack`, cumulative `upto` plus the `missing` numbers) every ACK_DELAY_MS
// while messages arrive, sooner after a gap (past a short grace: NKN may only have reordered)
// or a duplicate (the relay resent, so our last ack may have been lost). `FastLane` is what
// the NKN path (nkn-path.js) adds for its fast-path streams: `caps`, resends, keepalive fan-out.

export const MUX_CAP = "mux/1";
const RESEND_MS = 1000; // resend a relay.http (or relay.cancel) the relay did not confirm yet
const CANCEL_PERSIST_MS = 5000;
const ACK_DELAY_MS = 250;
const GAP_GRACE_MS = 30;
const GAP_REASK_MS = 1000; // a gap still open: ask again (our ack, or the resend, was lost)
const REASK_FOR_MS = 15000; // ... while the relay is heard from: a gone relay is not asked forever
const MAX_MISSING = 256;
const HELD_MAX = 4096; // messages above a gap kept at most; the relay's window bounds it anyway

export class MuxInbox {
  // sendAck(frame): send one relay.mux.ack; deliver(message): one message, in n order.
  constructor({ sendAck, deliver }) {
    this.sendAck = sendAck;
    this.deliver = deliver;
    this.epoch = null;
    this.upto = 0; // every n <= upto was delivered
    this.known = 0; // highest n the relay said (or showed) it sent
    this.held = new Map(); // n -> message that arrived above a gap
    this.dueMs = null;
    this.timer = null;
    this.heardMs = 0;
    this.stats = { muxIn: 0, duplicates: 0, acksOut: 0, resendAsks: 0 };
  }

  get hasGap() {
    return this.known > this.upto;
  }

  // A relay.mux frame, as received.
  onMessage(message) {
    if (!validMessage(message)) return;
    this._epoch(message.m);
    this._skip(message.lo);
    this.stats.muxIn += 1;
    const n = message.n;
    const duplicate = n <= this.upto || this.held.has(n);
    if (!duplicate && this.held.size < HELD_MAX) {
      this.held.set(n, message);
      this.known = Math.max(this.known, n);
      this._drain();
    } else if (duplicate) this.stats.duplicates += 1;
    this._arrived(duplicate);
  }

  // A relay.mux.keepalive: `last` reveals a lost last message.
  onKeepalive(keepalive) {
    if (typeof keepalive.m !== "string" || !Number.isInteger(keepalive.last)) return;
    this._epoch(keepalive.m);
    this._skip(keepalive.lo);
    this.known = Math.max(this.known, keepalive.last);
    if (this.hasGap) this._arrived(false);
  }

  // The numbers known sent but not received, lowest first.
  missing() {
    const out = [];
    for (let n = this.upto + 1; n <= this.known && out.length < MAX_MISSING; n++) {
      if (!this.held.has(n)) out.push(n);
    }
    return out;
  }

  // Send the last ack now if one is due (the page leaves the path); stop the timer.
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.dueMs !== null) this._ack();
  }

  _drain() {
    while (this.held.has(this.upto + 1)) {
      const message = this.held.get(this.upto + 1);
      this.held.delete(this.upto + 1);
      this.upto += 1;
      this.deliver(message);
    }
  }

  // `lo`: the relay keeps nothing below it (acknowledged by an earlier page at this address):
  // deliver what is held there, and ask for nothing below it.
  _skip(lo) {
    if (!Number.isInteger(lo) || lo - 1 <= this.upto) return;
    const below = [...this.held.keys()].filter((n) => n < lo).sort((a, b) => a - b);
    for (const n of below) {
      const message = this.held.get(n);
      this.held.delete(n);
      this.deliver(message);
    }
    this.upto = lo - 1;
    this.known = Math.max(this.known, this.upto);
    this._drain();
  }

  _epoch(epoch) {
    if (epoch === this.epoch) return;
    // A new epoch is a new numbering: the relay forgot us (idle) or restarted.
    this.epoch = epoch;
    this.upto = this.known = 0;
    this.held.clear();
  }

  _arrived(duplicate) {
    this.heardMs = performance.now();
    const delay = duplicate ? 0 : this.hasGap ? GAP_GRACE_MS : ACK_DELAY_MS;
    this._due(performance.now() + delay);
  }

  _due(atMs) {
    if (this.dueMs !== null && this.dueMs <= atMs) return;
    this.dueMs = atMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._ack(), Math.max(0, atMs - performance.now()));
  }

  _ack() {
    this.dueMs = null;
    this.timer = null;
    if (this.epoch === null) return;
    const missing = this.missing();
    this.stats.acksOut += 1;
    this.stats.resendAsks += missing.length;
    this.sendAck({ event: "relay.mux.ack", m: this.epoch, upto: this.upto, missing });
    const now = performance.now();
    if (this.hasGap && now - this.heardMs < REASK_FOR_MS) this._due(now + GAP_REASK_MS);
  }
}

export class FastLane {
  // send(frame): one DM to the relay, errors swallowed; pending: the NKN path's id -> handler.
  constructor(send, pending) {
    this.send = send;
    this.pending = pending;
    this.ids = new Set(); // open fast-path streams: a relay.mux.keepalive is for them all
    this.inbox = new MuxInbox({ sendAck: send, deliver: (message) => this._deliver(message) });
  }

  // Handle a fast-path DM; false for any other frame.
  onFrame(frame) {
    if (frame.event === "relay.mux") this.inbox.onMessage(frame);
    else if (frame.event === "relay.mux.keepalive") {
      this.inbox.onKeepalive(frame);
      for (const id of this.ids) this.pending.get(id)?.({ event: "relay.response.keepalive", id });
    } else return false;
    return true;
  }

  // Ask for the fast path in `frame` (a relay.http) and resend it until the stream's state
  // says the relay was heard from: a lost request would otherwise wait for the begin timeout.
  // The relay ignores copies of a request it runs or ran lately.
  open(frame, state) {
    frame.caps = [MUX_CAP];
    this.ids.add(frame.id);
    state.resend = setInterval(() => {
      if (state.heard || state.ended) clearInterval(state.resend);
      else this.send(frame);
    }, RESEND_MS);
  }

  closed(id, state) {
    clearInterval(state.resend);
    this.ids.delete(id);
  }

  // relay.cancel, resent until the stream's end arrives (a lost cancel would leave the model
  // generating), for CANCEL_PERSIST_MS at most.
  cancel(id, state) {
    this.send({ event: "relay.cancel", id });
    const stopAt = performance.now() + CANCEL_PERSIST_MS;
    const again = setInterval(() => {
      if (state.ended || performance.now() > stopAt) clearInterval(again);
      else this.send({ event: "relay.cancel", id });
    }, RESEND_MS);
  }

  close() {
    this.inbox.close();
  }

  // One message, in order: each item to its stream (a stream the page left: dropped).
  _deliver(message) {
    for (const item of message.items) {
      const handler = item && this.ids.has(item.id) ? this.pending.get(item.id) : undefined;
      const frame = handler && seedFrame(item);
      if (frame) handler(frame);
    }
  }
}

function validMessage(message) {
  return (
    typeof message.m === "string" &&
    Number.isInteger(message.n) &&
    message.n >= 1 &&
    Array.isArray(message.items)
  );
}

// One item as the seed frame the stream reader (nkn-frames.js) understands; `accepted` (the
// relay has the request: stop resending it) becomes a frame that reader ignores.
function seedFrame(item) {
  switch (item.k) {
    case "begin":
      return { event: "relay.response.begin", id: item.id, ok: item.ok, status: item.status, headers: item.headers };
    case "lines": {
      const cut = new Set(item.cut || []);
      const lines = (item.lines || []).map((line, i) => ({ seq: item.seq + i, line, truncated: cut.has(item.seq + i) }));
      return { event: "relay.response.lines", id: item.id, lines };
    }
    case "end":
      return { ...item, event: "relay.response.end" };
    case "accepted":
      return { event: "relay.mux.accepted", id: item.id };
    default:
      return null;
  }
}
