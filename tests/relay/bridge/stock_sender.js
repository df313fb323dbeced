// A stock nkn-sdk MultiClient sends one DM with default options (it waits for an ACK) to
// argv[3] via the local node at argv[2]; prints one JSON line: {"acked": true} or {"error"}.
"use strict";

const crypto = require("crypto");
const nkn = require("nkn-sdk");

const [rpcServerAddr, dest, text] = process.argv.slice(2);
setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(1);
}, 20000);

const client = new nkn.MultiClient({
  seed: crypto.randomBytes(32).toString("hex"),
  numSubClients: 1,
  rpcServerAddr,
});
client.onConnect(async () => {
  try {
    const reply = await client.send(dest, text);
    process.stdout.write(JSON.stringify({ acked: reply === null }) + "\n");
    process.exit(0);
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }) + "\n");
    process.exit(1);
  }
});
