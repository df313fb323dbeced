// A stock nkn-sdk peer of the relay: argv = rpcServerAddr, relay address, "client" | "multi",
// then one or more relay DM frames (JSON). It sends each frame with the SDK's default options
// (waiting for the delivery ACK) from a plain nkn.Client or a MultiClient, collects every DM
// that comes back until each request is answered (relay.pong, relay.info, relay.response or
// relay.response.end), and prints one JSON line: {"dms": [{"src", "data"}], "acked": n} or
// {"error"}.
"use strict";

const crypto = require("crypto");
const nkn = require("nkn-sdk");

const [rpcServerAddr, dest, kind, ...frames] = process.argv.slice(2);
const FINAL = new Set(["relay.pong", "relay.info", "relay.response", "relay.response.end"]);

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n");
  // Exit at once: the SDK leaves 5-10 s timers behind.
  process.exit(code);
}

setTimeout(() => finish({ error: "timed out", dms }, 1), 25000);

const seed = crypto.randomBytes(32).toString("hex");
const client =
  kind === "client"
    ? new nkn.Client({ seed, rpcServerAddr })
    : new nkn.MultiClient({ seed, numSubClients: 1, rpcServerAddr });
const dms = [];
let answered = 0;
let acked = 0;

client.onMessage(({ src, payload }) => {
  const data = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
  dms.push({ src, data });
  try {
    if (FINAL.has(JSON.parse(data).event)) answered += 1;
  } catch (_err) {
    // not JSON: kept in dms for the test to see
  }
  if (answered >= frames.length) setTimeout(() => finish({ dms, acked }, 0), 200);
});

client.onConnect(async () => {
  try {
    for (const frame of frames) {
      await client.send(dest, frame);
      acked += 1;
    }
  } catch (err) {
    finish({ error: String(err), dms }, 1);
  }
});
