// Where each stream of a run is now: queued in the browser, at the relay or at the farm,
// prefilling, or streaming. The page cannot see inside the farm, so the phases of streams still
// waiting for their first token are estimated from what it knows: the farm's slots, the relay's
// workers and which streams already hold one. Streams are served first come, first served.

export const Phase = Object.freeze({
  BROWSER: "queued-browser",
  RELAY: "queued-relay",
  FARM: "queued-farm",
  PREFILL: "prefilling",
  WAITING: "waiting", // the farm's slots are unknown: nothing to estimate with
  STREAMING: "streaming",
});

// Chromium opens at most 6 HTTP/1.1 connections to one server; further fetches wait their turn.
export const BROWSER_CONNECTIONS = 6;

const LABELS = {
  [Phase.BROWSER]: "queued in the browser",
  [Phase.RELAY]: "queued at the relay",
  [Phase.FARM]: "queued at the farm",
  [Phase.PREFILL]: "prefilling",
  [Phase.WAITING]: "waiting",
  [Phase.STREAMING]: "streaming",
};

export function phaseLabel(phase) {
  return LABELS[phase] ?? phase;
}

// The phase of every unfinished record (a Map record -> Phase), records in the order they were
// sent. `slots`: streams the farm runs at once (null: unknown); `relayWorkers`: the relay's
// (null: unknown or direct path). Over NKN a record that got any frame holds a relay worker.
export function assignPhases(records, { path, slots, relayWorkers }) {
  const phases = new Map();
  const live = records.filter((r) => !r.finished);
  let streaming = 0;
  for (const r of live) {
    if (r.firstTokenMs !== null) {
      phases.set(r, Phase.STREAMING);
      streaming += 1;
    }
  }
  if (path === "direct") {
    live.forEach((r, rank) => {
      if (rank >= BROWSER_CONNECTIONS && !phases.has(r)) phases.set(r, Phase.BROWSER);
    });
  } else if (relayWorkers) {
    const working = live.filter((r) => r.frames > 0).length;
    let rank = 0;
    for (const r of live) {
      if (phases.has(r) || r.frames > 0) continue;
      if (working + rank >= relayWorkers) phases.set(r, Phase.RELAY);
      rank += 1;
    }
  }
  let free = slots ? Math.max(0, slots - streaming) : null;
  for (const r of live) {
    if (phases.has(r)) continue;
    if (free === null) phases.set(r, Phase.WAITING);
    else if (free > 0) {
      phases.set(r, Phase.PREFILL);
      free -= 1;
    } else phases.set(r, Phase.FARM);
  }
  return phases;
}
