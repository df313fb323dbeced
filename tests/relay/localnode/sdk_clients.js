// Drives the unmodified nkn-sdk Client and MultiClient against a local node (argv[2] = RPC URL)
// and prints one JSON line of observations for test_sdk_clients.py.
"use strict";

const crypto = require("crypto");
const nkn = require("nkn-sdk");

const rpcServerAddr = process.argv[2];
const seed = () => crypto.randomBytes(32).toString("hex");
setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(1);
}, 20000);

function connected(client) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    client.onConnect(() => resolve(Date.now() - started));
    client.onConnectFailed(() => reject(new Error("connect failed")));
  });
}

async function main() {
  const a = new nkn.Client({ seed: seed(), identifier: "a", rpcServerAddr });
  const b = new nkn.Client({ seed: seed(), identifier: "b", rpcServerAddr });
  const m1 = new nkn.MultiClient({ seed: seed(), numSubClients: 2, rpcServerAddr });
  const m2 = new nkn.MultiClient({ seed: seed(), numSubClients: 2, rpcServerAddr });
  const connectMs = await Promise.all([a, b, m1, m2].map(connected));

  const atB = [];
  b.onMessage(({ src, payload }) => {
    atB.push({ src, payload: String(payload) });
    return payload === "ask" ? "answer" : undefined;
  });
  const atM2 = [];
  m2.onMessage(({ src, payload }) => {
    atM2.push({ src, payload: String(payload) });
  });
  // Let every MultiClient subclient register before sending (spec §7 test-side reminders).
  await new Promise((r) => setTimeout(r, 300));

  const reply = await a.send(b.addr, "ask");
  const ack = await a.send(b.addr, "hello");
  const binary = await a.send(b.addr, Uint8Array.from([0, 1, 2, 255]));
  const mcAck = await m1.send(m2.addr, "to multiclient");
  let timeoutError = null;
  try {
    // A valid key nobody registered (an invalid point fails earlier, in encryption).
    const jwk = crypto.generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
    const offline = `x.${Buffer.from(jwk.x, "base64url").toString("hex")}`;
    await a.send(offline, "nobody", { responseTimeout: 300 });
  } catch (err) {
    timeoutError = err.message;
  }
  await Promise.all([a, b, m1, m2].map((c) => c.close()));
  const result = {
    connectMs,
    addrs: { a: a.addr, m1: m1.addr },
    reply: String(reply),
    ack,
    binary,
    atB,
    atM2,
    mcAck,
    timeoutError,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0); // the SDK leaves 10 s timers behind (spec trap 9)
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.stack) }) + "\n");
  process.exit(1);
});
