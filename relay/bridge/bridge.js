// The Node bridge between the ollama-farm relay (Python) and the official nkn-sdk.
//
// Protocol: newline-delimited JSON. stdin carries commands, stdout carries events; the SDK's
// own console logging is moved to stderr so it can never corrupt the event stream.
//   commands: {"cmd":"open", seed, identifier, numSubClients, originalClient, rpcServerAddr,
//              tls, reconnectIntervalMin, reconnectIntervalMax}   (first line, once)
//             {"cmd":"send", id, dest, data}    fire and forget (no_reply on the wire)
//             {"cmd":"send", id, dest, ack:true, data}   asks the receiver for its delivery ACK
//             {"cmd":"probe", nonce}            a DM to ourselves, to prove the path works
//             {"cmd":"close"}
//   events:   {"event":"ready", addr, connect_ms}
//             {"event":"message", src, data}
//             {"event":"sent", id} / {"event":"send_error", id, error, permanent}
//             {"event":"acked", id} / {"event":"unacked", id, error}   (only for ack:true)
//             {"event":"probe", nonce}
//             {"event":"error", error, fatal}
//             {"event":"closed"}
// The seed is read from stdin, never from argv, so it does not show up in `ps`.
// `sent` means the DM's bytes have left this process (see WS_BUFFER_MAX_B), so the Python
// side's count of unconfirmed DMs is what this process holds: bounded there, by bytes.
"use strict";

// Loopback never goes through an HTTP proxy: axios obeys HTTP_PROXY, and a proxied `getwsaddr`
// to a local node fails.
const loopback = "127.0.0.1,localhost,::1";
for (const key of ["NO_PROXY", "no_proxy"]) {
  process.env[key] = process.env[key] ? `${process.env[key]},${loopback}` : loopback;
}

const readline = require("readline");
const util = require("util");

// nkn-sdk logs with console.log, which writes to stdout; move all of it to stderr before the
// SDK loads so nothing but events ever reaches stdout.
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => process.stderr.write(util.format(...args) + "\n");
}

const nkn = require("nkn-sdk");

const PROBE_EVENT = "bridge.probe";
// Errors that retrying cannot fix: the Python side drops these messages instead of requeueing.
const PERMANENT = new Set([
  "DataSizeTooLargeError",
  "InvalidDestinationError",
  "InvalidArgumentError",
  "InvalidAddressError",
]);

// `ws.send` only copies a message into the socket's buffer. On a stalled link that buffer
// would grow without bound while the Python side, told "sent", handed over more DMs; so `sent`
// waits while any ready sub-client's websocket holds more than this.
const WS_BUFFER_MAX_B = 1 << 20;
const DRAIN_POLL_MS = 10;
// How long the SDK waits for a delivery ACK; the relay decides much sooner on its own clock.
const ACK_WAIT_MS = 60000;

let client = null;
let closing = false;
let drainQueue = []; // ids whose `sent` waits for the websockets to drain, oldest first
let drainTimer = null;

// Events leave in one stdout write per turn of the event loop: under load a write per `sent`
// event was a noticeable share of the bridge's CPU. Whoever exits must call flushEvents first.
let pending = [];

function flushEvents() {
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  process.stdout.write(text);
}

function emit(event) {
  pending.push(JSON.stringify(event));
  if (pending.length === 1) setImmediate(flushEvents);
}

function fail(message) {
  emit({ event: "error", error: message, fatal: true });
  flushEvents();
  // Exit explicitly: the SDK leaves 5-10 s timers behind that would keep Node alive.
  process.exit(2);
}

function pick(src, keys) {
  const out = {};
  for (const key of keys) {
    if (src[key] !== undefined && src[key] !== null && src[key] !== "") out[key] = src[key];
  }
  return out;
}

function open(cmd) {
  if (client !== null) return emit({ event: "error", error: "already open", fatal: false });
  const options = pick(cmd, [
    "seed",
    "identifier",
    "numSubClients",
    "originalClient",
    "rpcServerAddr",
    "tls",
    "reconnectIntervalMin",
    "reconnectIntervalMax",
  ]);
  // The SDK's default is to guess TLS/WebRTC from `window`; Node has none, but be explicit.
  options.webrtc = false;
  const started = Date.now();
  try {
    client = new nkn.MultiClient(options);
  } catch (err) {
    return fail(`cannot create MultiClient: ${err.message}`);
  }
  client.onConnect(() => emit({ event: "ready", addr: client.addr, connect_ms: Date.now() - started }));
  for (const id of Object.keys(client.clients)) {
    client.clients[id].onMessage(({ src }) => notePeer(src));
  }
  client.onConnectFailed(() => fail(`could not connect to NKN via ${options.rpcServerAddr || "the default seed"}`));
  client.onMessage(({ src, payload }) => {
    const data = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
    if (src === client.addr) {
      try {
        const msg = JSON.parse(data);
        if (msg && msg.event === PROBE_EVENT) {
          emit({ event: "probe", nonce: msg.nonce });
          return false; // no ACK for our own probe
        }
      } catch (_err) {
        // Not a probe: deliver it like any other message.
      }
    }
    emit({ event: "message", src, data });
    // Returning nothing makes the SDK ACK unless the sender set no_reply (ours do, see
    // sendNoReply), so stock SDK senders waiting for an ACK still resolve.
  });
}

// Who a peer is decides where answers go. A MultiClient peer sends from its `__i__.` sub-clients
// and listens on them; a plain nkn.Client (or a MultiClient's original client) has no prefix and
// listens only on its bare address, which only our original client (`originalClient`, address
// without prefix) sends to. The MultiClient strips the prefix before our handler sees `src`,
// so each sub-client's own handler records the raw one here (the MultiClient's handler answers
// for the ACK; ours returns nothing, which the SDK ignores).
const SUBCLIENT_PREFIX = /^__\d+__\./;
const PEER_KINDS_MAX = 10000;
const peerKinds = new Map(); // bare peer address -> "plain" | "multi", oldest first

function notePeer(rawSrc) {
  if (typeof rawSrc !== "string") return undefined;
  const multi = SUBCLIENT_PREFIX.test(rawSrc);
  const bare = multi ? rawSrc.replace(SUBCLIENT_PREFIX, "") : rawSrc;
  // A peer seen plain once stays plain: its bare address is the one it surely listens on.
  const kind = peerKinds.get(bare) === "plain" || !multi ? "plain" : "multi";
  peerKinds.delete(bare);
  peerKinds.set(bare, kind);
  if (peerKinds.size > PEER_KINDS_MAX) peerKinds.delete(peerKinds.keys().next().value);
  return undefined;
}

// The sub-clients to send a DM to `dest` from: the original client alone for a plain peer,
// the `__i__.` ones for a MultiClient peer, all ready ones for a peer not heard from yet.
function sendersFor(dest) {
  const ready = client.readyClientIDs();
  const kind = peerKinds.get(dest);
  const chosen =
    kind === "plain" ? ready.filter((id) => id === "") : kind === "multi" ? ready.filter((id) => id !== "") : ready;
  return chosen.length > 0 ? chosen : ready;
}

// nkn-sdk 1.3.6 never puts `no_reply` on the wire, even with `noReply: true` (its payload
// encoder drops the field), so every DM made the receiver answer with one signed, encrypted ACK
// per sub-client, which both ends then had to process: well over half the cost of a DM. We
// build the payload ourselves with `no_reply` set and send it the way MultiClient.send does
// (one message id, one copy from each ready sub-client to its `__i__.` twin). These are SDK
// internals, pinned by package-lock.json; without them we fall back to the public send.
// The relay asks for an ACK on one DM per peer at a time (`ack:true`), to notice a peer that
// is gone; those go without `no_reply`, as every DM of the stock SDK does.
const payloads = nkn.pb && nkn.pb.payloads;
const CAN_SET_NO_REPLY =
  payloads !== undefined &&
  typeof payloads.Payload.prototype.setNoReply === "function" &&
  typeof nkn.Client.prototype._send === "function" &&
  typeof nkn.Client.prototype._processDests === "function";
const MESSAGE_ID_BYTES = 8;

function textPayload(text, noReply) {
  const data = new payloads.TextData();
  data.setText(text);
  const payload = new payloads.Payload();
  payload.setType(payloads.PayloadType.TEXT);
  payload.setMessageId(nkn.util.randomBytes(MESSAGE_ID_BYTES));
  payload.setData(data.serializeBinary());
  payload.setNoReply(noReply);
  return payload;
}

// Waits for the receiver's ACK (or reply) to one message, on whichever sub-client it arrives:
// the receiver ACKs from each of its sub-clients to ours, and each of ours matches responses
// to its own pending ids. The SDK's ResponseProcessor is not exported; its ResponseManager
// only uses these four members. Returns { promise, cancel }.
function awaitAck(ids, messageId) {
  const key = Buffer.from(messageId).toString("hex");
  const deadline = Date.now() + ACK_WAIT_MS;
  let settle = null;
  const forget = () => {
    for (const id of ids) {
      const sub = client && client.clients[id];
      if (sub) sub.responseManager.responseProcessors.delete(key);
    }
  };
  const promise = new Promise((resolve, reject) => {
    settle = (err) => {
      if (settle === null) return;
      settle = null;
      forget();
      if (err) reject(err);
      else resolve();
    };
  });
  const processor = {
    messageId: key,
    checkTimeout: (now) => (now || Date.now()) > deadline,
    handleResponse: () => settle && settle(null),
    handleTimeout: () => settle && settle(new Error("Message timeout")),
  };
  for (const id of ids) client.clients[id].responseManager.add(processor);
  return { promise, cancel: () => settle && settle(new Error("not sent")) };
}

// Resolves once written, to { acked }: null, or a promise of the receiver's ACK.
async function sendDm(dest, text, ack) {
  if (!CAN_SET_NO_REPLY) {
    // Without the SDK internals a write cannot be told from its ACK: `sent` comes first.
    if (!ack) return { acked: await client.send(dest, text, { noReply: true }) };
    return { acked: client.send(dest, text, { responseTimeout: ACK_WAIT_MS }) };
  }
  const ids = sendersFor(dest);
  if (ids.length === 0) throw new nkn.errors.ClientNotReadyError();
  const target = await client.defaultClient._processDests(dest);
  const payload = textPayload(text, !ack);
  const waiting = ack ? awaitAck(ids, payload.getMessageId()) : null;
  try {
    await Promise.any(ids.map((id) => client.clients[id]._send(id === "" ? target : `${id}.${target}`, payload)));
  } catch (err) {
    if (waiting !== null) {
      waiting.promise.catch(() => {});
      waiting.cancel();
    }
    // All sub-clients failed: report the first reason, whose name tells if a retry can help.
    throw err.errors && err.errors.length > 0 ? err.errors[0] : err;
  }
  return { acked: waiting === null ? null : waiting.promise };
}

function backlogged() {
  for (const id of client.readyClientIDs()) {
    const ws = client.clients[id].ws;
    if (ws && ws.bufferedAmount > WS_BUFFER_MAX_B) return true;
  }
  return false;
}

function confirmSent(id) {
  if (drainQueue.length === 0 && !backlogged()) return emit({ event: "sent", id });
  drainQueue.push(id);
  if (drainTimer === null) drainTimer = setTimeout(drainSent, DRAIN_POLL_MS);
}

function drainSent() {
  drainTimer = null;
  if (client !== null && backlogged()) {
    drainTimer = setTimeout(drainSent, DRAIN_POLL_MS);
    return;
  }
  const ids = drainQueue;
  drainQueue = [];
  for (const id of ids) emit({ event: "sent", id });
}

function errorText(err) {
  return `${(err && err.name) || "Error"}: ${err && err.message ? err.message : err}`;
}

function send(cmd) {
  if (client === null) {
    return emit({ event: "send_error", id: cmd.id, error: "not open", permanent: false });
  }
  sendDm(cmd.dest, cmd.data, cmd.ack === true).then(
    ({ acked }) => {
      confirmSent(cmd.id);
      if (acked && typeof acked.then === "function") {
        acked.then(
          () => emit({ event: "acked", id: cmd.id }),
          (err) => emit({ event: "unacked", id: cmd.id, error: errorText(err) }),
        );
      }
    },
    (err) =>
      emit({
        event: "send_error",
        id: cmd.id,
        error: errorText(err),
        permanent: PERMANENT.has(err.name),
      }),
  );
}

function probe(cmd) {
  if (client === null) return;
  const data = JSON.stringify({ event: PROBE_EVENT, nonce: cmd.nonce });
  sendDm(client.addr, data, false).catch((err) =>
    emit({ event: "error", error: `probe: ${err.message}`, fatal: false }),
  );
}

async function close() {
  if (closing) return;
  closing = true;
  try {
    if (client !== null) await client.close();
  } catch (err) {
    console.error("close:", err);
  }
  emit({ event: "closed" });
  flushEvents();
  process.exit(0);
}

function handle(line) {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    return emit({ event: "error", error: `bad command line: ${err.message}`, fatal: false });
  }
  switch (cmd.cmd) {
    case "open":
      return open(cmd);
    case "send":
      return send(cmd);
    case "probe":
      return probe(cmd);
    case "close":
      return close();
    default:
      return emit({ event: "error", error: `unknown command ${cmd.cmd}`, fatal: false });
  }
}

process.on("unhandledRejection", (err) => {
  emit({ event: "error", error: `unhandled: ${err && err.message ? err.message : err}`, fatal: false });
});

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", handle);
// The supervisor went away (or closed our stdin): leave at once rather than linger.
lines.on("close", close);
