// What the page asks of the farm and the relay before a run: the model list (directly or over
// NKN), and what the relay admits from one page, in the user's words.

import { describeFetchError, httpErrorMessage } from "./streams.js";

export async function tagsDirect(proxyUrl) {
  const url = `${proxyUrl}/api/tags`;
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(describeFetchError(error, url));
  }
  if (!response.ok) throw new Error(await httpErrorMessage(response));
  return response.json();
}

export async function tagsOverNkn(relay, service) {
  const response = await relay.request({ service, path: "/api/tags", method: "GET" });
  if (response.json) return response.json;
  throw new Error(`relay returned /api/tags without JSON (HTTP ${response.status})`);
}

// What the relay will not admit, as one line before the run, or null.
export function relayRoomProblem(info, streams) {
  const limit = info?.peer_limit;
  if (!Number.isInteger(limit) || streams <= limit) return null;
  return (
    `The relay admits at most ${limit} streams from one page at a time (its per-peer limit, ` +
    `RELAY_PEER_LIMIT): choose ${limit} or fewer, or raise the relay's limit.`
  );
}

export function busyText(error, info) {
  if (error !== "busy") return error;
  const limit = info?.peer_limit;
  const room = Number.isInteger(limit) ? `it admits ${limit} streams per page, fewer while other peers use it` : "too many requests";
  return `busy: the relay's admission room is full (${room})`;
}
