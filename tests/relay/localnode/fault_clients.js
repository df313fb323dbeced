// Sends numbered messages from one unmodified nkn-sdk Client to another through a local node
// (which may fault them) and prints one JSON line: what arrived, in order, and how late.
// argv: rpcUrl senderSeed receiverSeed count direction
// The receiver is done once the node has seen all `count` for `direction` and it holds as many
// as the node delivered (sent - dropped + duplicated, GET /_localnode/state), or at the deadline.
"use strict";

const nkn = require("nkn-sdk");

const [rpcServerAddr, senderSeed, receiverSeed, countText, direction] = process.argv.slice(2);
const count = Number(countText);
const DEADLINE_MS = 30000;
const POLL_MS = 50;

function connected(client) {
  return new Promise((resolve, reject) => {
    client.onConnect(resolve);
    client.onConnectFailed(() => reject(new Error("connect failed")));
  });
}

// How many messages the node has seen for `direction`, and how many it will have delivered.
async function nodeCounts() {
  const response = await fetch(new URL("/_localnode/state", rpcServerAddr));
  const traffic = (await response.json()).traffic[direction];
  return { seen: traffic.messages, want: traffic.messages - traffic.dropped + traffic.duplicated };
}

async function main() {
  const sender = new nkn.Client({ seed: senderSeed, identifier: "tx", rpcServerAddr });
  const receiver = new nkn.Client({ seed: receiverSeed, identifier: "rx", rpcServerAddr });
  await Promise.all([connected(sender), connected(receiver)]);
  const sentAt = [];
  const arrivals = [];
  receiver.onMessage(({ payload }) => {
    const i = Number(String(payload));
    arrivals.push({ i, late_ms: performance.now() - sentAt[i] });
    return false; // no ACK: only the numbered messages cross the node
  });
  for (let i = 0; i < count; i++) {
    sentAt[i] = performance.now();
    await sender.send(receiver.addr, String(i), { noReply: true });
  }
  const deadline = Date.now() + DEADLINE_MS;
  let node = await nodeCounts();
  while ((node.seen < count || arrivals.length < node.want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    node = await nodeCounts();
  }
  await Promise.all([sender.close(), receiver.close()]);
  process.stdout.write(JSON.stringify({ arrivals, expected: node.want }) + "\n");
  process.exit(0); // the SDK leaves 10 s timers behind (spec trap 9)
}

setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(1);
}, DEADLINE_MS + 15000);

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.stack) }) + "\n");
  process.exit(1);
});
