// The NKN path: the page's own nkn-sdk client sends relay.http DMs to the relay and
// reassembles the streamed frames (relay.response.begin/lines/keepalive/end) by seq.

const SUBCLIENTS = 2;
const ALL_READY_MS = 3000;
const CONNECT_TIMEOUT_MS = 15000;
const BEGIN_GRACE_MS = 10000; // beyond the request's own timeout_ms, for NKN delivery
const UPSTREAM_TIMEOUT_MS = 120000;
const PING_PREFIX = "ping-"; // pending-map keys of pings in flight

// Loads the served browser build of nkn-sdk once; resolves to the global `nkn`.
let sdkPromise = null; // one script tag per page, like the browser's own module cache
export function loadSdk(src) {
  if (window.nkn) return Promise.resolve(window.nkn);
  if (!sdkPromise) {
    sdkPromise = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () =>
        window.nkn ? resolve(window.nkn) : reject(new Error("nkn-sdk loaded but defined nothing"));
      script.onerror = () => {
        sdkPromise = null;
        reject(new Error(`cannot load ${src}`));
      };
      document.head.append(script);
    });
  }
  return sdkPromise;
}

export class NknRelay {
  // config: the page's /config.json; onStatus(text) reports the connection's progress.
  constructor(config, onStatus) {
    this.config = config;
    this.onStatus = onStatus;
    this.client = null;
    this.clientReady = null; // the NKN connection, kept when only the relay check fails
    this.pending = new Map(); // request id -> handler object
    this.connecting = null;
  }

  get relayAddress() {
    return this.config.relay_address;
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
      this.clientReady = this._open().catch((error) => {
        this.clientReady = null;
        this.close();
        throw error;
      });
    }
    const client = await this.clientReady;
    this.onStatus(`connected as ${short(client.addr)}; pinging the relay…`);
    const pong = await this.ping();
    this.onStatus(`connected as ${short(client.addr)}; relay ${short(this.relayAddress)} answered`);
    return pong;
  }

  async _open() {
    this.onStatus("loading nkn-sdk…");
    const nkn = await loadSdk(this.config.nkn_sdk);
    const options = {
      numSubClients: SUBCLIENTS,
      // The original client also receives what a single-client relay sends to our bare address.
      originalClient: true,
      // A page served over https would otherwise pick WebRTC and wss.
      webrtc: false,
      tls: this.config.nkn_tls,
    };
    if (this.config.nkn_rpc) options.rpcServerAddr = this.config.nkn_rpc;
    this.onStatus("connecting to NKN…");
    const client = new nkn.MultiClient(options);
    this.client = client;
    client.onMessage(({ src, payload }) => {
      this._onMessage(src, payload);
      // No ACK: the relay sends without waiting for one (noReply), so it would be wasted.
      return false;
    });
    await withTimeout(
      new Promise((resolve, reject) => {
        client.onConnect(resolve);
        client.onConnectFailed(() => reject(new Error("NKN connect failed: no node accepted us")));
      }),
      CONNECT_TIMEOUT_MS,
      `NKN connect timed out after ${CONNECT_TIMEOUT_MS / 1000} s`,
    );
    // onConnect fires when the first sub-client is ready; a DM sent then leaves only through
    // that one and misses a relay listening on the others.
    await waitFor(() => client.readyClientIDs().length >= SUBCLIENTS + 1, ALL_READY_MS);
    return client;
  }

  close() {
    const client = this.client;
    this.client = null;
    if (client) client.close().catch(() => {});
  }

  ping() {
    const id = `${PING_PREFIX}${crypto.randomUUID()}`;
    const frame = { event: "relay.ping", id, ts: Date.now() };
    // A DM can be lost while the relay reconnects; pings are cheap, so send a few.
    const timeoutMs = this.config.relay_ping_timeout_ms;
    const resend = setInterval(() => this._send(frame).catch(() => {}), timeoutMs / 4);
    // A relay that refuses us (RELAY_ALLOWED_PEERS) answers the ping with ok:false.
    const pick = (f) => {
      if (f.event === "relay.pong") return f;
      if (f.event === "relay.response" && f.ok === false) return refused(f);
      return undefined;
    };
    return this._await(id, frame, timeoutMs, pick)
      .catch((error) => {
        throw error.refused ? error : new Error(`relay unreachable: ${error.message}`);
      })
      .finally(() => clearInterval(resend));
  }

  // One non-streamed relay.http: resolves to the relay.response frame.
  async request(req, timeoutMs = 30000) {
    await this.connect();
    const id = crypto.randomUUID();
    const frame = { event: "relay.http", id, req: { timeout_ms: timeoutMs, ...req } };
    const response = await this._await(id, frame, timeoutMs + BEGIN_GRACE_MS, (f) =>
      f.event === "relay.response" || f.event === "relay.response.end" ? f : undefined,
    );
    if (!response.ok) throw new Error(relayError(response));
    return response;
  }

  // A streamed relay.http. `sink` gets: onLine(text), onFrame(kind), onEnd(errorOrNull).
  // Returns a handle with cancel(). Lines arrive in seq order; gaps wait for their frame.
  async stream(req, sink) {
    await this.connect();
    const id = crypto.randomUUID();
    const state = { nextSeq: 1, held: new Map(), begun: false, ended: false };
    const finish = (error) => {
      if (state.ended) return;
      state.ended = true;
      clearTimeout(state.beginTimer);
      this.pending.delete(id);
      sink.onEnd(error);
    };
    this.pending.set(id, (frame) => this._onStreamFrame(frame, state, sink, finish));
    const timeoutMs = req.timeout_ms ?? UPSTREAM_TIMEOUT_MS;
    state.beginTimer = setTimeout(() => {
      if (!state.begun) finish(`relay unreachable: no reply within ${(timeoutMs + BEGIN_GRACE_MS) / 1000} s`);
    }, timeoutMs + BEGIN_GRACE_MS);
    try {
      await this._send({ event: "relay.http", id, req: { timeout_ms: timeoutMs, ...req, stream: "chunks" } });
    } catch (error) {
      finish(`relay unreachable: ${error.message}`);
    }
    return {
      id,
      cancel: () => {
        if (state.ended) return;
        this._send({ event: "relay.cancel", id }).catch(() => {});
      },
    };
  }

  _onStreamFrame(frame, state, sink, finish) {
    switch (frame.event) {
      case "relay.response.begin":
        state.begun = true;
        sink.onFrame("begin");
        if (frame.ok === false || (frame.status && frame.status >= 400)) {
          state.beginError = frame.error || `HTTP ${frame.status}`;
        }
        break;
      case "relay.response.lines":
        state.begun = true;
        sink.onFrame("lines");
        for (const item of frame.lines || []) {
          if (Number.isInteger(item.seq) && item.seq >= state.nextSeq) state.held.set(item.seq, item.line);
        }
        while (state.held.has(state.nextSeq)) {
          const line = state.held.get(state.nextSeq);
          state.held.delete(state.nextSeq);
          state.nextSeq += 1;
          sink.onLine(line);
        }
        break;
      case "relay.response.keepalive":
        sink.onFrame("keepalive");
        break;
      case "relay.response.end": {
        sink.onFrame("end");
        const delivered = state.nextSeq - 1;
        if (frame.ok === false) finish(relayError(frame));
        else if (Number.isInteger(frame.last_seq) && frame.last_seq > delivered) {
          finish(`stream cut: ${frame.last_seq - delivered} line(s) lost in transit (got ${delivered} of ${frame.last_seq})`);
        } else if (state.beginError) finish(state.beginError);
        else finish(null);
        break;
      }
      case "relay.response":
        // The relay answers a request it refused before streaming with a plain response.
        finish(frame.ok === false ? relayError(frame) : `unexpected non-streamed reply (HTTP ${frame.status})`);
        break;
      default:
        break;
    }
  }

  _onMessage(src, payload) {
    let frame;
    try {
      frame = JSON.parse(typeof payload === "string" ? payload : new TextDecoder().decode(payload));
    } catch {
      return; // not one of ours: NKN lets anyone message this address
    }
    if (!frame || typeof frame !== "object") return;
    let handler = this.pending.get(frame.id);
    if (!handler && frame.event === "relay.pong") {
      // The DM API's pong need not echo the id: it then answers the oldest ping in flight.
      const key = [...this.pending.keys()].find((k) => String(k).startsWith(PING_PREFIX));
      handler = key && this.pending.get(key);
    }
    if (handler && stripSub(src) === stripSub(this.relayAddress)) handler(frame);
  }

  _send(frame) {
    if (!this.client) return Promise.reject(new Error("not connected to NKN"));
    // noReply: the relay answers with its own frames; waiting for ACKs would only add latency.
    return this.client.send(this.relayAddress, JSON.stringify(frame), { noReply: true });
  }

  // Send `frame` and resolve with the first reply frame that `pick` accepts.
  _await(id, frame, timeoutMs, pick) {
    return new Promise((resolve, reject) => {
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
  }
}

function relayError(frame) {
  if (frame.error) return frame.error;
  if (frame.status) return `HTTP ${frame.status}`;
  return "relay reported a failure without a reason";
}

function refused(frame) {
  const error = new Error(`relay refused: ${relayError(frame)}`);
  error.refused = true;
  return error;
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

// Poll `condition` every 50 ms until it holds or `ms` pass; never rejects.
function waitFor(condition, ms) {
  const deadline = performance.now() + ms;
  return new Promise((resolve) => {
    const check = () => {
      if (condition() || performance.now() > deadline) resolve();
      else setTimeout(check, 50);
    };
    check();
  });
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
