// Drawing a run on the page: one pane per stream (phase, figures, text, error), the summary and
// the farm's capacity line. Reads records; changes nothing but the DOM.

import { formatMs, plural, ttftSummary } from "./measure.js";
import { Phase, phaseLabel } from "./phases.js";
import { State } from "./streams.js";

const $ = (id) => document.getElementById(id);

export function makePane(index) {
  const root = document.createElement("article");
  root.className = "pane";
  root.setAttribute("aria-label", `Stream ${index}`);
  root.dataset.index = String(index);
  root.dataset.phases = "";
  const head = document.createElement("h2");
  const title = document.createElement("span");
  title.textContent = `Stream ${index}`;
  const state = document.createElement("span");
  state.className = "state";
  head.append(title, state);
  const stats = document.createElement("p");
  stats.className = "stats";
  const text = document.createElement("pre");
  text.className = "text";
  text.tabIndex = 0; // scrollable text must be reachable by keyboard
  text.setAttribute("aria-label", `Stream ${index} text`);
  const error = document.createElement("p");
  error.className = "error";
  error.hidden = true;
  root.append(head, stats, text, error);
  return { root, state, stats, text, error };
}

// `phase`: the record's Phase while it runs (undefined once it has finished).
export function renderPane(pane, record, path, phase) {
  const shown = record.finished ? record.state : phase ?? record.state;
  pane.root.dataset.state = record.state;
  pane.root.dataset.phase = shown;
  // Every phase the pane has shown, in order: what a user watching it saw.
  const seen = pane.root.dataset.phases ? pane.root.dataset.phases.split(" ") : [];
  if (seen[seen.length - 1] !== shown) pane.root.dataset.phases = [...seen, shown].join(" ");
  pane.state.textContent = record.finished ? record.state : phaseLabel(shown);
  const ttft = record.ttftMs;
  const rate = record.tokensPerSecond;
  const parts = [
    `TTFT ${ttft === null ? "–" : formatMs(ttft)}`,
    plural(record.evalCount ?? record.tokens, "token"),
    `${rate === null ? "–" : rate.toFixed(1)} tok/s`,
  ];
  if (path === "nkn") parts.push(plural(record.frames, "frame"), plural(record.keepalives, "keepalive"));
  pane.stats.textContent = parts.join(" · ");
  pane.root.dataset.ttftMs = ttft === null ? "" : String(Math.round(ttft));
  if (pane.text.textContent !== record.text) {
    pane.text.textContent = record.text;
    pane.text.scrollTop = pane.text.scrollHeight;
  }
  pane.error.hidden = !record.error;
  const lead = record.state === State.LOST ? "Lost" : "Error";
  pane.error.textContent = record.error ? `${lead}: ${record.error.replace(/^lost: /, "")}` : "";
}

export function renderSummary(run, nowMs) {
  const records = run.records;
  const ttft = ttftSummary(records, nowMs);
  const mark = ttft.provisional ? "≥ " : "";
  const tokens = records.reduce((sum, r) => sum + r.tokens, 0);
  const last = Math.max(0, ...records.map((r) => r.lastTokenMs ?? 0));
  const spanS = ((run.finished ? last : nowMs) - run.startedMs) / 1000;
  const count = (state) => records.filter((r) => r.state === state).length;
  $("sum-ttft-p50").textContent = ttft.p50Ms === null ? "–" : `${mark}${formatMs(ttft.p50Ms)}`;
  $("sum-ttft-max").textContent = ttft.maxMs === null ? "–" : `${mark}${formatMs(ttft.maxMs)}`;
  $("summary").dataset.provisional = String(ttft.provisional);
  $("ttft-note").textContent = ttft.provisional
    ? `Provisional: ${plural(ttft.provisional, "stream")} still waiting for a first token count as their wait so far.`
    : "";
  $("sum-rate").textContent = tokens && spanS > 0 ? (tokens / spanS).toFixed(1) : "–";
  $("sum-tokens").textContent = String(tokens);
  $("sum-done").textContent = `${count(State.DONE)} / ${records.length}`;
  $("sum-errors").textContent = String(count(State.ERROR));
  $("sum-lost").textContent = String(count(State.LOST));
  $("sum-frames").textContent = run.path === "nkn" ? `${run.frames} / ${run.keepalives}` : "– (direct)";
  $("sum-dms").textContent = run.nkn ? dmsText(run.nkn) : "– (direct)";
}

// "fast path (mux/1) · 12 DMs for 909 lines · 2 resends asked": which API the run's streams
// used, what the relay's DMs to this page (pongs included) carried since it started, and how
// many lost fast-path messages the page asked for again.
function dmsText({ fast, stats, at }) {
  const asks = stats.mux.resendAsks - at.asks;
  const text = `${fast ? "fast path (mux/1)" : "seed API"} · ${plural(stats.dmsIn - at.dmsIn, "DM")} for ${plural(stats.linesIn - at.linesIn, "line")}`;
  return asks ? `${text} · ${plural(asks, "resend")} asked` : text;
}

// "Farm: 4 slots (1 backend × 4): streams past 4 wait at the farm." `farm` is /farm.json.
export function capacityText(farm) {
  if (!farm || !farm.reachable) {
    return `Farm capacity unknown: ${farm && farm.problem ? farm.problem : "the site could not ask the proxy"}.`;
  }
  const backends = farm.backends_up || farm.backends;
  if (!farm.slots_per_backend) {
    return `Farm: ${plural(backends, "backend")}; slots unknown (the proxy was started without --num-parallel).`;
  }
  const slots = farm.slots_per_backend * backends;
  return (
    `Farm: ${plural(slots, "slot")} (${plural(backends, "backend")} × ${farm.slots_per_backend}), ` +
    `${farm.in_flight} in flight at the last look: streams past ${slots} queue at the farm until a slot frees.`
  );
}

export function farmSlots(farm) {
  if (!farm || !farm.reachable || !farm.slots_per_backend) return null;
  return farm.slots_per_backend * (farm.backends_up || farm.backends);
}
