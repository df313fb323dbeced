// The page's own NKN client: loads the served browser build of nkn-sdk and opens a MultiClient
// on the configured seed, ready on every sub-client before anything is sent.

const SUBCLIENTS = 2;
const ALL_READY_MS = 3000;
const CONNECT_TIMEOUT_MS = 15000;

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

// Open a MultiClient; onMessage(src, payload) gets every DM, onCreated(client) the client as
// soon as it exists (so that a failed connect can still be closed). Resolves when ready.
export async function openClient(config, onStatus, onMessage, onCreated) {
  onStatus("loading nkn-sdk…");
  const nkn = await loadSdk(config.nkn_sdk);
  const options = {
    numSubClients: SUBCLIENTS,
    // The original client also receives what a single-client relay sends to our bare address.
    originalClient: true,
    // A page served over https would otherwise pick WebRTC and wss.
    webrtc: false,
    tls: config.nkn_tls,
  };
  if (config.nkn_rpc) options.rpcServerAddr = config.nkn_rpc;
  onStatus("connecting to NKN…");
  const client = new nkn.MultiClient(options);
  onCreated(client);
  client.onMessage(({ src, payload }) => {
    onMessage(src, payload);
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
