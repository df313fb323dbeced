// The NKN path: the page's own nkn-sdk client sends relay.http DMs to the relay and
// reassembles the streamed frames (relay.response.begin/lines/keepalive/end) by seq. When the
// relay's relay.info offers the fast path (mux/1), streams ask for it (`caps`) and their items
// come in shared, repaired relay.mux messages (nkn-mux.js) instead; an old relay, or one with
// the fast path off, gets the seed API. A `RelayWatch` pings the relay while the path is in use
// and ends requests it stopped answering.

import { RelayWatch, formatSeconds } from "./liveness.js";
import { openClient } from "./nkn-client.js";
import { onStreamFrame, refused, relayError } from "./nkn-frames.js";
import { FastLane, MUX_CAP } from "./nkn-mux.js";

const BEGIN_GRACE_MS = 10000; // beyond the request's own timeout_ms, for NKN delivery
const UPSTREAM_TIMEOUT_MS = 120000;
const PING_PREFIX = "ping-"; // pending-map keys of pings in flight
const INFO_PREFIX = "info-"; // ... and of relay.info requests
const LIVE_PREFIX = "live-"; // ids of the watch's pings: their pongs need no handler
const SILENCE_DEFAULT_MS = 15000;

export class NknRelay {
  // config: the page's /config.json; onStatus(text) reports the connection's progress.
  constructor(config, onStatus) {
    this.config = config;
    this.onStatus = onStatus;
    this.client = null;
    this.clientReady = null; // the NKN connection, kept when only the relay check fails
    this.pending = new Map(); // request id -> handler object
    this.connecting = null;
    this.info = null; // the relay's relay.info (workers, peer_limit, keepalive_ms, offers), if it answered
    this.fast = new FastLane((frame) => this._send(frame).catch(() => {}), this.pending);
    this.stats = { dmsIn: 0, linesIn: 0, mux: this.fast.inbox.stats }; // DMs from the relay, lines in them
    this.watch = new RelayWatch({
      silenceMs: config.relay_silence_ms || SILENCE_DEFAULT_MS,
      sendPing: () => this._send({ event: "relay.ping", id: `${LIVE_PREFIX}${crypto.randomUUID()}`, ts: Date.now() }).catch(() => {}),
      onChange: (silent, quietMs) => this._onSilence(silent, quietMs),
    });
  }

  get silenceMs() {
    return this.watch.silenceMs;
  }

  // Stop pinging (the user left the NKN path); the next connect() pings again.
  pause() {
    this.watch.stop();
    this.fast.close();
    this.connecting = null;
  }

  _onSilence(silent, quietMs) {
    const relay = short(this.relayAddress);
    if (silent) {
      // The next connect() must ask again instead of trusting an old answer.
      this.connecting = null;
      this.onStatus(`relay ${relay} silent: no reply for ${formatSeconds(quietMs)} s — is it still running?`);
    } else {
      this.onStatus(`relay ${relay} answering again`);
    }
  }

  get relayAddress() {
    return this.config.relay_address;
  }

  // Whether streams take the fast path: the relay's relay.info offers it.
  get fastPath() {
    return Array.isArray(this.info?.offers) && this.info.offers.includes(MUX_CAP);
  }

  // Connect (once) and check the relay answers relay.ping. Throws a readable Error; the next
  // call pings again (and reconnects only if NKN itself failed).
  async connect() {
    if (!this.connecting) {
      this.connecting = this._connect().catch((error) => {
        this.connecting = null;
        throw error;
      });
    }
    return this.connecting;
  }

  async _connect() {
    if (!this.relayAddress) throw new Error("no relay NKN address configured (--relay-address)");
    if (!this.config.nkn_sdk) throw new Error(this.config.nkn_sdk_problem);
    if (!this.clientReady) {
      const onMessage = (src, payload) => this._onMessage(src, payload);
      const opened = openClient(this.config, this.onStatus, onMessage, (client) => { this.client = client; });
      this.clientReady = opened.catch((error) => {
        this.clientReady = null;
        this.close();
        throw error;
      });
    }
    const client = await this.clientReady;
    this.onStatus(`connected as ${short(client.addr)}; pinging the relay…`);
    let pong;
    try {
      pong = await this.ping();
    } catch (error) {
      this.onStatus(error.message);
      throw error;
    }
    this.info = await this.askInfo();
    this.watch.heard();
    this.watch.start();
    this.onStatus(`connected as ${short(client.addr)}; relay ${short(this.relayAddress)} answered${this._infoText()}; ${this.fastPath ? `fast path (${MUX_CAP})` : "seed API"}`);
    return pong;
  }

  // relay.info, or null from a relay that does not answer it in time (it is optional). Sent
  // a few times: one lost DM must not cost the fast path, which it tells of (`offers`).
  askInfo() {
    const id = `${INFO_PREFIX}${crypto.randomUUID()}`;
    const frame = { event: "relay.info", id };
    const timeoutMs = this.config.relay_ping_timeout_ms;
    const pick = (f) => (f.event === "relay.info" ? f : undefined);
    return this._await(id, frame, timeoutMs, pick, timeoutMs / 4).catch(() => null);
  }

  _infoText() {
    const info = this.info;
    if (!info) return "";
    const parts = [];
    if (Number.isInteger(info.workers)) parts.push(`${info.workers} workers`);
    if (Number.isInteger(info.peer_limit)) parts.push(`admits ${info.peer_limit} streams per page`);
    let text = parts.length ? ` (${parts.join(", ")})` : "";
    if (Number.isInteger(info.keepalive_ms) && info.keepalive_ms >= this.silenceMs) {
      text +=
        `. Warning: its keepalive (${formatSeconds(info.keepalive_ms)} s) is not shorter than this page's ` +
        `silence limit (${formatSeconds(this.silenceMs)} s), so quiet streams may read as lost: raise --relay-silence`;
    }
    return text;
  }

  close() {
    this.fast.close();
    const client = this.client;
    this.client = null;
    if (client) client.close().catch(() => {});
  }

  ping() {
    const id = `${PING_PREFIX}${crypto.randomUUID()}`;
    const frame = { event: "relay.ping", id, ts: Date.now() };
    const timeoutMs = this.config.relay_ping_timeout_ms;
    // A relay that refuses us (RELAY_ALLOWED_PEERS) answers the ping with ok:false.
    const pick = (f) => {
      if (f.event === "relay.pong") return f;
      if (f.event === "relay.response" && f.ok === false) return refused(f);
      return undefined;
    };
    // A DM can be lost while the relay reconnects; pings are cheap, so send a few.
    return this._await(id, frame, timeoutMs, pick, timeoutMs / 4).catch((error) => {
      throw error.refused ? error : new Error(`relay unreachable: ${error.message}`);
    });
  }

  // One non-streamed relay.http: resolves to the relay.response frame; rejects as soon as the
  // relay falls silent rather than at the request's own timeout.
  async request(req, timeoutMs = 30000) {
    await this.connect();
    const id = crypto.randomUUID();
    const frame = { event: "relay.http", id, req: { timeout_ms: timeoutMs, ...req } };
    const reply = this._await(id, frame, timeoutMs + BEGIN_GRACE_MS, (f) =>
      f.event === "relay.response" || f.event === "relay.response.end" ? f : undefined,
    );
    let entry;
    const lost = new Promise((_, reject) => {
      entry = this.watch.watch((message) => {
        this.pending.delete(id);
        reject(new Error(message));
      });
    });
    reply.catch(() => {}); // a reply that loses the race must not reject unobserved
    lost.catch(() => {});
    try {
      const response = await Promise.race([reply, lost]);
      if (!response.ok) throw new Error(relayError(response));
      return response;
    } finally {
      this.watch.unwatch(entry);
    }
  }

  // A streamed relay.http. `sink` gets: onLine(text), onFrame(kind), onEnd(errorOrNull).
  // Returns a handle with cancel(). Lines arrive in seq order; gaps wait for their frame.
  async stream(req, sink) {
    await this.connect();
    const id = crypto.randomUUID();
    const fast = this.fastPath;
    const state = { nextSeq: 1, held: new Map(), begun: false, ended: false, heard: false };
    const finish = (error, kind = error ? "error" : "done") => {
      if (state.ended) return;
      state.ended = true;
      clearTimeout(state.beginTimer);
      this.fast.closed(id, state);
      this.pending.delete(id);
      this.watch.unwatch(entry);
      sink.onEnd(error, kind);
    };
    const entry = this.watch.watch((message) => {
      // Tell the relay, should it still be there, so its slot frees; then say lost.
      this._send({ event: "relay.cancel", id }).catch(() => {});
      finish(message, "lost");
    });
    const counted = { ...sink, onLine: (line) => { this.stats.linesIn += 1; sink.onLine(line); } };
    this.pending.set(id, (frame) => {
      state.heard = true;
      this.watch.frame(entry);
      this._onStreamFrame(frame, state, counted, finish);
    });
    const timeoutMs = req.timeout_ms ?? UPSTREAM_TIMEOUT_MS;
    state.beginTimer = setTimeout(() => {
      if (!state.begun) finish(`relay unreachable: no reply within ${(timeoutMs + BEGIN_GRACE_MS) / 1000} s`);
    }, timeoutMs + BEGIN_GRACE_MS);
    const frame = { event: "relay.http", id, req: { timeout_ms: timeoutMs, ...req, stream: "chunks" } };
    if (fast) this.fast.open(frame, state);
    try {
      await this._send(frame);
    } catch (error) {
      finish(`relay unreachable: ${error.message}`);
    }
    const cancel = () => {
      if (state.ended) return;
      if (fast) this.fast.cancel(id, state);
      else this._send({ event: "relay.cancel", id }).catch(() => {});
    };
    return { id, fast, cancel };
  }

  _onStreamFrame(frame, state, sink, finish) {
    onStreamFrame(frame, state, sink, finish);
  }

  _onMessage(src, payload) {
    let frame;
    try {
      frame = JSON.parse(typeof payload === "string" ? payload : new TextDecoder().decode(payload));
    } catch {
      return; // not one of ours: NKN lets anyone message this address
    }
    if (!frame || typeof frame !== "object") return;
    if (stripSub(src) !== stripSub(this.relayAddress)) return;
    this.stats.dmsIn += 1;
    this.watch.heard();
    if (this.fast.onFrame(frame)) return;
    let handler = this.pending.get(frame.id);
    const prefix = { "relay.pong": PING_PREFIX, "relay.info": INFO_PREFIX }[frame.event];
    if (!handler && prefix) {
      // The DM API's pong and info need not echo the id: they then answer the oldest in flight.
      const key = [...this.pending.keys()].find((k) => String(k).startsWith(prefix));
      handler = key && this.pending.get(key);
    }
    if (handler) handler(frame);
  }

  _send(frame) {
    if (!this.client) return Promise.reject(new Error("not connected to NKN"));
    // noReply: the relay answers with its own frames; waiting for ACKs would only add latency.
    return this.client.send(this.relayAddress, JSON.stringify(frame), { noReply: true });
  }

  // Send `frame` (again every `resendMs`, if given) and resolve with the first reply frame that
  // `pick` accepts.
  _await(id, frame, timeoutMs, pick, resendMs = 0) {
    const resend = resendMs ? setInterval(() => this._send(frame).catch(() => {}), resendMs) : null;
    const reply = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply from ${short(this.relayAddress)} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, (reply) => {
        const picked = pick(reply);
        if (picked === undefined) return;
        clearTimeout(timer);
        this.pending.delete(id);
        if (picked instanceof Error) reject(picked);
        else resolve(picked);
      });
      this._send(frame).catch((error) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error);
      });
    });
    return resend ? reply.finally(() => clearInterval(resend)) : reply;
  }
}

function stripSub(address) {
  return (address || "").replace(/^__\d+__\./, "");
}

function short(address) {
  if (!address) return "?";
  const dot = address.lastIndexOf(".");
  const prefix = dot >= 0 ? address.slice(0, dot + 1) : "";
  const key = address.slice(dot + 1);
  return `${prefix}${key.slice(0, 8)}…`;
}
