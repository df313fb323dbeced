// The demo page: reads /config.json, validates the controls, runs N parallel streams by the
// chosen path and shows each one live with a summary and a tokens/s chart.

import { RateChart } from "./chart.js";
import { NknRelay } from "./nkn-path.js";
import { State, StreamRecord, describeFetchError, httpErrorMessage, parseLine, runDirect } from "./streams.js";

const STREAMS_MIN = 1;
const STREAMS_MAX = 32;
const MAX_TOKENS_MAX = 8192;
const CHART_EVERY_MS = 250;
const RATE_WINDOW_MS = 1000;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("controls"), model: $("model"), models: $("models"), modelsNote: $("models-note"),
  refresh: $("refresh-models"), preset: $("preset"), prompt: $("prompt"), streams: $("streams"),
  maxTokens: $("max-tokens"), start: $("start"), stop: $("stop"), message: $("message"),
  panes: $("panes"), target: $("target"), nknStatus: $("nkn-status"),
  pathSet: document.querySelector("fieldset.path"),
};

const page = { config: null, relay: null, knownModels: null, modelsError: "not listed yet", run: null };

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
    const tags = path === "nkn" ? await tagsOverNkn() : await tagsDirect();
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

async function tagsDirect() {
  const url = `${page.config.proxy_url}/api/tags`;
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(describeFetchError(error, url));
  }
  if (!response.ok) throw new Error(await httpErrorMessage(response));
  return response.json();
}

async function tagsOverNkn() {
  const response = await relay().request({ service: page.config.relay_service, path: "/api/tags", method: "GET" });
  if (response.json) return response.json;
  throw new Error(`relay returned /api/tags without JSON (HTTP ${response.status})`);
}

function relay() {
  if (!page.relay) page.relay = new NknRelay(page.config, (text) => { ui.nknStatus.textContent = text; });
  return page.relay;
}

// ---- validation ---------------------------------------------------------------------------

function readInputs() {
  const problems = [];
  const streamsRaw = ui.streams.value.trim();
  const streams = Number(streamsRaw);
  if (!Number.isInteger(streams) || streams < STREAMS_MIN || streams > STREAMS_MAX || streamsRaw === "") {
    problems.push(`Parallel streams must be a whole number from ${STREAMS_MIN} to ${STREAMS_MAX} (got "${streamsRaw}").`);
  }
  const maxRaw = ui.maxTokens.value.trim();
  const maxTokens = Number(maxRaw);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_MAX || maxRaw === "") {
    problems.push(`Max tokens must be a whole number from 1 to ${MAX_TOKENS_MAX} (got "${maxRaw}").`);
  }
  const prompt = ui.prompt.value;
  if (!prompt.trim()) problems.push("The prompt is empty: type one or pick a preset.");
  const model = ui.model.value.trim();
  if (!model) problems.push("Choose a model.");
  else if (page.knownModels === null) problems.push(`Cannot check model "${model}": ${page.modelsError}`);
  else if (!page.knownModels.has(model) && !page.knownModels.has(`${model}:latest`)) {
    const listed = [...page.knownModels].join(", ") || "none";
    problems.push(`Unknown model "${model}": the server lists ${listed}.`);
  }
  return { problems, streams, maxTokens, prompt, model };
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
  showMessage(`Running ${inputs.streams} stream(s) ${run.path === "nkn" ? "over NKN" : "directly"}…`, "info");
  const body = {
    model: inputs.model,
    prompt: inputs.prompt,
    stream: true,
    options: { num_predict: inputs.maxTokens },
  };
  const onUpdate = (added) => {
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
    onEnd: (error) => {
      if (error === "cancelled") record.cancel();
      else if (error) record.fail(error);
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
  if (run.finished) finishRun(run);
}

function sampleRate(run) {
  const now = performance.now();
  const cutoff = now - RATE_WINDOW_MS;
  while (run.arrivals.length && run.arrivals[0] < cutoff) run.arrivals.shift();
  page.chart.push((now - run.startedMs) / 1000, run.arrivals.length / (RATE_WINDOW_MS / 1000));
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
  const errors = run.records.filter((r) => r.state === State.ERROR).length;
  const cancelled = run.records.filter((r) => r.state === State.CANCELLED).length;
  const done = run.records.length - errors - cancelled;
  showMessage(`Finished: ${done} done, ${errors} error(s), ${cancelled} cancelled.`, errors ? "error" : "info");
}

// ---- rendering ----------------------------------------------------------------------------

function makePane(index) {
  const root = document.createElement("article");
  root.className = "pane";
  root.setAttribute("aria-label", `Stream ${index}`);
  root.dataset.index = String(index);
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
  const error = document.createElement("p");
  error.className = "error";
  error.hidden = true;
  root.append(head, stats, text, error);
  return { root, state, stats, text, error };
}

function render(run) {
  if (run.dirty) {
    run.dirty = false;
    run.records.forEach((record, i) => renderPane(run.panes[i], record, run.path));
    renderSummary(run);
  }
  if (run.finished) finishRun(run);
  else requestAnimationFrame(() => render(run));
}

function renderPane(pane, record, path) {
  pane.root.dataset.state = record.state;
  pane.state.textContent = record.state;
  const ttft = record.ttftMs;
  const rate = record.tokensPerSecond;
  const parts = [
    `TTFT ${ttft === null ? "–" : formatMs(ttft)}`,
    `${record.evalCount ?? record.tokens} tok`,
    `${rate === null ? "–" : rate.toFixed(1)} tok/s`,
  ];
  if (path === "nkn") parts.push(`${record.frames} frames`, `${record.keepalives} keepalives`);
  pane.stats.textContent = parts.join(" · ");
  pane.root.dataset.ttftMs = ttft === null ? "" : String(Math.round(ttft));
  if (pane.text.textContent !== record.text) {
    pane.text.textContent = record.text;
    pane.text.scrollTop = pane.text.scrollHeight;
  }
  pane.error.hidden = !record.error;
  pane.error.textContent = record.error ? `Error: ${record.error}` : "";
}

function renderSummary(run) {
  const ok = run.records.filter((r) => r.state !== State.ERROR && r.ttftMs !== null);
  // Errors are counted but kept out of the TTFT quantiles.
  const ttfts = ok.map((r) => r.ttftMs).sort((a, b) => a - b);
  const tokens = run.records.reduce((sum, r) => sum + r.tokens, 0);
  const last = Math.max(0, ...run.records.map((r) => r.lastTokenMs ?? 0));
  const spanS = ((run.finished ? last : performance.now()) - run.startedMs) / 1000;
  $("sum-ttft-p50").textContent = ttfts.length ? formatMs(quantile(ttfts, 0.5)) : "–";
  $("sum-ttft-max").textContent = ttfts.length ? formatMs(ttfts[ttfts.length - 1]) : "–";
  $("sum-rate").textContent = tokens && spanS > 0 ? (tokens / spanS).toFixed(1) : "–";
  $("sum-tokens").textContent = String(tokens);
  $("sum-done").textContent = `${run.records.filter((r) => r.state === State.DONE).length} / ${run.records.length}`;
  $("sum-errors").textContent = String(run.records.filter((r) => r.state === State.ERROR).length);
  $("sum-frames").textContent = run.path === "nkn" ? `${run.frames} / ${run.keepalives}` : "– (direct)";
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// ---- wiring -------------------------------------------------------------------------------

function onSubmit(event) {
  event.preventDefault();
  if (page.run && !page.run.finished) return;
  const inputs = readInputs();
  if (inputs.problems.length) {
    showMessage(inputs.problems.join(" "));
    return;
  }
  showMessage("");
  startRun(inputs);
}

function onPathChange() {
  if (currentPath() === "nkn") {
    relay().connect().catch((error) => { ui.nknStatus.textContent = error.message; });
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
