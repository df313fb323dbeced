// Is the relay there now? While the NKN path is in use the page pings the relay on a timer and
// watches every request it has sent: a request that got frames must keep getting them (the
// relay sends a keepalive every RELAY_KEEPALIVE_S while a stream is silent), and one still
// queued, which gets nothing until a worker takes it, lives as long as the relay answers pings.
// Past `silenceMs` without either, the request is lost.

const CHECK_EVERY_MS = 250;
const PING_MIN_MS = 250;
const PING_MAX_MS = 5000;

export class RelayWatch {
  // sendPing(): fire one relay.ping; onChange(silent, quietMs): the relay fell silent or came back.
  constructor({ silenceMs, sendPing, onChange }) {
    this.silenceMs = silenceMs;
    this.pingEveryMs = Math.min(PING_MAX_MS, Math.max(PING_MIN_MS, silenceMs / 3));
    this.sendPing = sendPing;
    this.onChange = onChange;
    this.lastHeardMs = performance.now();
    this.lastPingMs = 0;
    this.silent = false;
    this.entries = new Set();
    this.timer = null;
  }

  get running() {
    return this.timer !== null;
  }

  // Anything from the relay (a pong, any frame) proves it is there.
  heard() {
    this.lastHeardMs = performance.now();
    if (this.silent) {
      this.silent = false;
      this.onChange(false, 0);
    }
  }

  start() {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this._tick(), CHECK_EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  // Watch one request; `onLost(message)` runs once if it goes silent. Returns the entry, which
  // `frame(entry)` refreshes and `unwatch(entry)` forgets.
  watch(onLost) {
    const entry = { sentMs: performance.now(), lastFrameMs: null, onLost };
    this.entries.add(entry);
    return entry;
  }

  frame(entry) {
    entry.lastFrameMs = performance.now();
  }

  unwatch(entry) {
    this.entries.delete(entry);
  }

  _tick() {
    const now = performance.now();
    if (now - this.lastPingMs >= this.pingEveryMs) {
      this.lastPingMs = now;
      this.sendPing();
    }
    const quietMs = now - this.lastHeardMs;
    if (!this.silent && quietMs > this.silenceMs) {
      this.silent = true;
      this.onChange(true, quietMs);
    }
    const limitS = formatSeconds(this.silenceMs);
    for (const entry of [...this.entries]) {
      const since = entry.lastFrameMs ?? Math.max(entry.sentMs, this.lastHeardMs);
      if (now - since <= this.silenceMs) continue;
      this.entries.delete(entry);
      entry.onLost(`lost: no data from the relay for ${limitS} s`);
    }
  }
}

export function formatSeconds(ms) {
  return String(+(ms / 1000).toFixed(1));
}
