// The demo page: reads /config.json, validates the controls, runs N parallel streams by the
// chosen path and shows each one live (its phase, figures and text) with a summary, the farm's
// capacity and a tokens/s chart.

import { RateChart } from "./chart.js";
import { readInputs } from "./inputs.js";
import { plural, windowRate } from "./measure.js";
import { busyText, relayRoomProblem, tagsDirect, tagsOverNkn } from "./models.js";
import { NknRelay } from "./nkn-path.js";
import { assignPhases } from "./phases.js";
import { capacityText, farmSlots, makePane, renderPane, renderSummary } from "./render.js";
import { State, StreamRecord, parseLine, runDirect } from "./streams.js";

const CHART_EVERY_MS = 250;
const RATE_WINDOW_MS = 1000;
const FARM_EVERY_TICKS = 8; // the capacity line's in-flight count is asked anew every 2 s of a run

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("controls"), model: $("model"), models: $("models"), modelsNote: $("models-note"),
  refresh: $("refresh-models"), preset: $("preset"), prompt: $("prompt"), streams: $("streams"),
  maxTokens: $("max-tokens"), start: $("start"), stop: $("stop"), message: $("message"),
  panes: $("panes"), target: $("target"), nknStatus: $("nkn-status"), capacity: $("capacity"),
  pathSet: document.querySelector("fieldset.path"),
};

const page = {
  config: null, relay: null, knownModels: null, modelsError: "not listed yet", run: null,
  farm: null, // /farm.json: the farm's slots and backends, asked at load and before each run
  nknProblem: null, // why the NKN path is off, if it is
};

function currentPath() {
  return ui.form.querySelector("input[name=path]:checked").value;
}

function showMessage(text, kind = "error") {
  ui.message.textContent = text;
  ui.message.className = kind === "info" ? "message info" : "message";
  ui.message.hidden = !text;
}

// ---- models -------------------------------------------------------------------------------

async function listModels() {
  const path = currentPath();
  page.knownModels = null;
  page.modelsError = "listing models…";
  ui.modelsNote.textContent = `Listing models ${path === "nkn" ? "over NKN" : "from the proxy"}…`;
  try {
    const tags = path === "nkn"
      ? await tagsOverNkn(relay(), page.config.relay_service)
      : await tagsDirect(page.config.proxy_url);
    const names = (tags.models || []).map((m) => m.name || m.model).filter(Boolean);
    if (currentPath() !== path) return; // the user switched path meanwhile
    page.knownModels = new Set(names);
    page.modelsError = null;
    ui.models.replaceChildren(...names.map((name) => new Option(name, name)));
    ui.modelsNote.textContent = names.length
      ? `${names.length} model(s): ${names.join(", ")}`
      : "The server lists no models (pull one first).";
  } catch (error) {
    if (currentPath() !== path) return;
    page.modelsError = error.message;
    ui.modelsNote.textContent = `Cannot list models: ${error.message}`;
  }
}

function relay() {
  if (!page.relay) {
    page.relay = new NknRelay(page.config, (text) => {
      // A late status from the NKN side must not overwrite the line once the user left it.
      if (currentPath() === "nkn" || page.run?.path === "nkn") ui.nknStatus.textContent = text;
    });
  }
  return page.relay;
}

// ---- capacity -----------------------------------------------------------------------------

async function refreshFarm() {
  try {
    const response = await fetch("/farm.json");
    page.farm = await response.json();
  } catch (error) {
    page.farm = { reachable: false, problem: `cannot ask the site for /farm.json: ${error.message}` };
  }
  const text = capacityText(page.farm);
  if (ui.capacity.textContent !== text) ui.capacity.textContent = text;
}

// ---- a run --------------------------------------------------------------------------------

class Run {
  constructor(path, inputs) {
    this.path = path;
    this.inputs = inputs;
    this.startedMs = performance.now();
    this.abort = new AbortController();
    this.records = [];
    this.panes = [];
    this.handles = [];
    this.arrivals = []; // performance.now() of every token, for the sliding-window rate
    this.firstArrivalMs = null;
    this.slots = farmSlots(page.farm);
    this.relayWorkers = path === "nkn" ? page.relay?.info?.workers ?? null : null;
    const stats = path === "nkn" ? page.relay?.stats : null; // DMs counted from here on
    this.nkn = stats ? { fast: page.relay.fastPath, stats, at: { ...stats, asks: stats.mux.resendAsks } } : null;
    this.chart = null;
    this.dirty = true;
    this.frames = 0;
    this.keepalives = 0;
  }

  get finished() {
    return this.records.every((r) => r.finished);
  }
}

function startRun(inputs) {
  const run = new Run(currentPath(), inputs);
  page.run = run;
  ui.panes.replaceChildren();
  for (let i = 0; i < inputs.streams; i++) {
    run.records.push(new StreamRecord(i + 1, run.startedMs));
    const pane = makePane(i + 1);
    run.panes.push(pane);
    ui.panes.append(pane.root);
  }
  page.chart.reset();
  ui.pathSet.disabled = true; // a run keeps the path it started on
  ui.start.disabled = true;
  ui.stop.disabled = false;
  const at = run.slots && inputs.streams > run.slots ? `: ${run.slots} at once, the rest queue at the farm` : "";
  showMessage(`Running ${plural(inputs.streams, "stream")} ${run.path === "nkn" ? "over NKN" : "directly"}${at}…`, "info");
  const body = {
    model: inputs.model,
    prompt: inputs.prompt,
    stream: true,
    options: { num_predict: inputs.maxTokens },
  };
  const onUpdate = (added) => {
    if (added && run.firstArrivalMs === null) run.firstArrivalMs = performance.now();
    for (let k = 0; k < added; k++) run.arrivals.push(performance.now());
    run.dirty = true;
  };
  run.records.forEach((record) => {
    if (run.path === "nkn") startNknStream(run, record, body, onUpdate);
    else runDirect({ proxyUrl: page.config.proxy_url, body, record, signal: run.abort.signal, onUpdate });
  });
  run.timer = setInterval(() => tick(run), CHART_EVERY_MS);
  requestAnimationFrame(() => render(run));
}

async function startNknStream(run, record, body, onUpdate) {
  const sink = {
    onLine: (line) => {
      const chunk = parseLine(line);
      if (chunk === null) record.fail(`bad line from the relay: ${line.slice(0, 120)}`);
      else onUpdate(record.applyChunk(chunk, performance.now()));
    },
    onFrame: (kind) => {
      record.frames += 1;
      run.frames += 1;
      if (kind === "keepalive") {
        record.keepalives += 1;
        run.keepalives += 1;
      }
      run.dirty = true;
    },
    onEnd: (error, kind) => {
      if (error === "cancelled") record.cancel();
      else if (kind === "lost") record.lose(error);
      else if (error) record.fail(busyText(error, page.relay?.info));
      else record.endOfStream();
      onUpdate(0);
    },
  };
  try {
    const handle = await relay().stream(
      { service: page.config.relay_service, path: "/api/generate", method: "POST",
        headers: { "Content-Type": "application/json" }, json: body },
      sink,
    );
    run.handles.push(handle);
    if (run.abort.signal.aborted) handle.cancel();
  } catch (error) {
    record.fail(error.message);
    onUpdate(0);
  }
}

function stopRun() {
  const run = page.run;
  if (!run || run.finished) return;
  run.abort.abort();
  for (const handle of run.handles) handle.cancel();
  // Over NKN the relay confirms with end(error "cancelled"); the pane says cancelled at once
  // and late frames for a finished stream are ignored.
  for (const record of run.records) record.cancel();
  run.dirty = true;
  render(run);
}

function tick(run) {
  sampleRate(run);
  run.dirty = true; // waiting streams' provisional TTFT grows with the clock
  run.ticks = (run.ticks ?? 0) + 1;
  if (run.ticks % FARM_EVERY_TICKS === 2) refreshFarm(); // first at 0.5 s: the requests are in
  if (run.finished) finishRun(run);
}

// Before the first token the farm made nothing: 0. After it, the rate over the time since (up to
// the window), once a whole sampling interval has passed: a token or two over a few
// milliseconds would be a spike no stream ever ran at.
function sampleRate(run) {
  const now = performance.now();
  const cutoff = now - RATE_WINDOW_MS;
  while (run.arrivals.length && run.arrivals[0] < cutoff) run.arrivals.shift();
  const t = (now - run.startedMs) / 1000;
  const first = run.firstArrivalMs;
  if (first === null) page.chart.push(t, 0);
  else if (now - first >= CHART_EVERY_MS) page.chart.push(t, windowRate(run.arrivals, now, first, RATE_WINDOW_MS));
}

function finishRun(run) {
  if (run.closed) return;
  run.closed = true;
  clearInterval(run.timer);
  sampleRate(run);
  render(run);
  if (page.run !== run) return;
  ui.pathSet.disabled = false;
  ui.start.disabled = false;
  ui.stop.disabled = true;
  refreshFarm();
  const count = (state) => run.records.filter((r) => r.state === state).length;
  const errors = count(State.ERROR);
  const lost = count(State.LOST);
  const cancelled = count(State.CANCELLED);
  const lostText = lost ? `, ${lost} lost (no data from the relay for ${page.relay.silenceMs / 1000} s)` : "";
  showMessage(
    `Finished: ${count(State.DONE)} done, ${errors} error(s), ${cancelled} cancelled${lostText}.`,
    errors || lost ? "error" : "info",
  );
}

// ---- rendering ----------------------------------------------------------------------------

function render(run) {
  if (run.dirty) {
    run.dirty = false;
    const phases = assignPhases(run.records, { path: run.path, slots: run.slots, relayWorkers: run.relayWorkers });
    run.records.forEach((record, i) => renderPane(run.panes[i], record, run.path, phases.get(record)));
    renderSummary(run, performance.now());
  }
  if (run.finished) finishRun(run);
  else requestAnimationFrame(() => render(run));
}

// ---- wiring -------------------------------------------------------------------------------

async function onSubmit(event) {
  event.preventDefault();
  if (page.run && !page.run.finished) return;
  const inputs = readInputs(ui, page.knownModels, page.modelsError);
  if (inputs.problems.length) {
    showMessage(inputs.problems.join(" "));
    return;
  }
  ui.start.disabled = true; // until the checks below are done: one run per press
  try {
    if (currentPath() === "nkn") {
      showMessage("Checking the relay…", "info");
      await relay().connect(); // pings again if the relay fell silent since
      const problem = relayRoomProblem(page.relay?.info, inputs.streams);
      if (problem) {
        showMessage(problem);
        return;
      }
    }
    await refreshFarm();
  } catch (error) {
    showMessage(error.message);
    return;
  } finally {
    ui.start.disabled = false;
  }
  showMessage("");
  startRun(inputs);
}

function onPathChange() {
  if (currentPath() === "nkn") {
    relay().connect().catch((error) => { ui.nknStatus.textContent = error.message; });
  } else {
    // The NKN line describes a path no longer in use.
    page.relay?.pause();
    ui.nknStatus.textContent = page.nknProblem ?? "";
  }
  listModels();
}

async function init() {
  page.chart = new RateChart($("chart"));
  try {
    const response = await fetch("/config.json");
    page.config = await response.json();
  } catch (error) {
    showMessage(`Cannot load /config.json: ${error.message}`);
    return;
  }
  const cfg = page.config;
  ui.model.value = cfg.default_model || "";
  ui.target.textContent =
    `Direct: ${cfg.proxy_url} · NKN: ${cfg.relay_address ? `relay ${cfg.relay_address}` : "no relay configured"}` +
    (cfg.relay_address ? ` via ${cfg.nkn_seed}` : "");
  const nknRadio = ui.form.querySelector("input[value=nkn]");
  const nknProblem = !cfg.relay_address ? "NKN path off: start the site with --relay-address." : cfg.nkn_sdk_problem;
  page.nknProblem = nknProblem || null;
  page.farm = cfg.farm ?? null;
  ui.capacity.textContent = capacityText(page.farm);
  if (nknProblem) {
    nknRadio.disabled = true;
    ui.nknStatus.textContent = nknProblem;
  }
  // The server asked the proxy's /_health whether the backend is the project's simulator: say
  // so, so that nobody takes its numbers for a real model's.
  $("synthetic").hidden = cfg.synthetic !== true;
  if (cfg.engine && cfg.synthetic !== true) {
    $("engine").textContent = `engine: ${cfg.engine}`;
    $("engine").hidden = false;
  }
  ui.form.addEventListener("submit", onSubmit);
  ui.stop.addEventListener("click", stopRun);
  ui.refresh.addEventListener("click", listModels);
  ui.preset.addEventListener("change", () => {
    if (ui.preset.value) ui.prompt.value = ui.preset.value;
    ui.preset.value = "";
  });
  for (const radio of ui.form.querySelectorAll("input[name=path]")) radio.addEventListener("change", onPathChange);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stopRun();
  });
  document.body.dataset.ready = "1";
  await listModels();
}

init();
