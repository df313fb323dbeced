// The simulator's llama.cpp worker: one GGUF model on node-llama-cpp, driven over stdin/stdout.
//
// Protocol: newline-delimited JSON, every command carries an `id` and every answer names it.
// node-llama-cpp's and llama.cpp's own logging goes to stderr, so only events reach stdout.
//   commands: {"cmd":"load", id, path, threads}                    (first line, once)
//             {"cmd":"open", id, sequences, context_size}          a context of N sequences
//             {"cmd":"close", id, ctx}                             dispose a context (by open id)
//             {"cmd":"generate", id, ctx, prompt, prefix, options} one completion on a free sequence
//             {"cmd":"cancel", id}                                 abort generation `id` now
//             {"cmd":"tokenize", id, text}
//             {"cmd":"embed", id, texts, context_size}
//             {"cmd":"shutdown", id}
//   events:   {"event":"loaded", id, info}
//             {"event":"opened", id} / {"event":"closed", id}
//             {"event":"started", id, prompt_tokens}
//             {"event":"tokens", id, count, text}                  one or more tokens, in order
//             {"event":"done", id, reason, context}               reason: stop | length | abort
//             {"event":"tokenized", id, tokens}
//             {"event":"embedded", id, vectors, counts}
//             {"event":"failed", id, error}                        that command failed
//             {"event":"fatal", error}                             followed by exit 2
// The worker exits when stdin closes, so it never outlives the simulator.
import readline from "node:readline";
import util from "node:util";

for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => process.stderr.write(util.format(...args) + "\n");
}

const { getLlama, LlamaCompletion, LlamaLogLevel } = await import("node-llama-cpp");

let llama = null;
let model = null;
const contexts = new Map(); // open id -> Promise<Pool>
const runs = new Map(); // generate id -> AbortController
const grammars = new Map(); // JSON text of a format -> Promise<LlamaGrammar>
const GRAMMAR_CACHE = 32;
let embedder = null; // {size, context: Promise<LlamaEmbeddingContext>}
let embedQueue = Promise.resolve();
let threads = 1;

let pending = [];
function flush() {
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  process.stdout.write(text);
}
function emit(event) {
  pending.push(JSON.stringify(event));
  if (pending.length === 1) setImmediate(flush);
}
function fatal(message) {
  emit({ event: "fatal", error: message });
  flush();
  process.exit(2);
}
function message(error) {
  return error instanceof Error ? error.message : String(error);
}

// A context's sequences, handed out first come first served. The simulator never runs more
// generations on a context than it has sequences, so `take` waits only for a sequence whose
// abort is still settling.
class Pool {
  constructor(context) {
    this.context = context;
    this.free = [];
    this.waiting = [];
    for (let i = 0; i < context.totalSequences; i++) {
      const sequence = context.getSequence();
      this.free.push({ sequence, completion: new LlamaCompletion({ contextSequence: sequence }) });
    }
  }
  take() {
    if (this.free.length > 0) return Promise.resolve(this.free.shift());
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  give(slot) {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }
}

async function load(cmd) {
  const started = performance.now();
  threads = cmd.threads;
  llama = await getLlama({
    gpu: false,
    build: "never",
    maxThreads: threads,
    logLevel: LlamaLogLevel.warn,
    logger: (level, text) => process.stderr.write(`llama.cpp ${level}: ${text}\n`),
  });
  model = await llama.loadModel({ modelPath: cmd.path });
  emit({
    event: "loaded",
    id: cmd.id,
    info: {
      load_ms: Math.round(performance.now() - started),
      threads,
      model_bytes: model.size,
      train_context: model.trainContextSize,
    },
  });
}

async function open(cmd) {
  const pool = model
    .createContext({ sequences: cmd.sequences, contextSize: cmd.context_size, threads })
    .then((context) => new Pool(context));
  contexts.set(cmd.id, pool);
  await pool;
  emit({ event: "opened", id: cmd.id });
}

async function close(cmd) {
  const pool = contexts.get(cmd.ctx);
  contexts.delete(cmd.ctx);
  if (pool) {
    try {
      await (await pool).context.dispose();
    } catch {
      // A context that never opened has nothing to dispose.
    }
  }
  emit({ event: "closed", id: cmd.id });
}

function grammarFor(format) {
  const key = JSON.stringify(format);
  let grammar = grammars.get(key);
  if (!grammar) {
    grammar = format === "json" ? llama.getGrammarFor("json") : llama.createGrammarForJsonSchema(format);
    grammar.catch(() => grammars.delete(key));
    if (grammars.size >= GRAMMAR_CACHE) grammars.delete(grammars.keys().next().value);
    grammars.set(key, grammar);
  }
  return grammar;
}

function promptTokens(cmd) {
  return [...(cmd.prefix ?? []), ...model.tokenize(cmd.prompt ?? "", false, "trimLeadingSpace")];
}

// What LlamaCompletion evaluates: BOS, then as much of the prompt's end as fits before the
// context-shift reserve (10% of the context).
function evaluatedCount(tokens, contextSize) {
  const bos = model.tokens.shouldPrependBosToken ? 1 : 0;
  const room = contextSize - Math.max(1, Math.floor(contextSize / 10));
  return Math.min(bos + tokens.length, room);
}

const REASONS = { eogToken: "stop", stopGenerationTrigger: "stop", customStopTrigger: "stop", maxTokens: "length", abort: "abort" };

async function generate(cmd) {
  // Registered before the first await, so a cancel that follows the command always finds it.
  const abort = new AbortController();
  runs.set(cmd.id, abort);
  const poolPromise = contexts.get(cmd.ctx);
  if (!poolPromise) {
    runs.delete(cmd.id);
    throw new Error(`no context ${cmd.ctx}`);
  }
  const pool = await poolPromise;
  const slot = await pool.take();
  try {
    if (abort.signal.aborted) {
      emit({ event: "done", id: cmd.id, reason: "abort", context: [] });
      return;
    }
    const o = cmd.options;
    const tokens = promptTokens(cmd);
    const grammar = o.format == null ? undefined : await grammarFor(o.format);
    emit({ event: "started", id: cmd.id, prompt_tokens: evaluatedCount(tokens, pool.context.contextSize) });
    const produced = [];
    let count = 0;
    const result = await slot.completion.generateCompletionWithMeta(tokens, {
      signal: abort.signal,
      stopOnAbortSignal: true,
      maxTokens: o.max_tokens > 0 ? o.max_tokens : undefined,
      temperature: o.temperature,
      topK: o.top_k,
      topP: o.top_p,
      minP: o.min_p,
      seed: o.seed ?? undefined,
      repeatPenalty: o.repeat_last_n === 0 ? false : {
        lastTokens: o.repeat_last_n,
        penalty: o.repeat_penalty,
        frequencyPenalty: o.frequency_penalty || undefined,
        presencePenalty: o.presence_penalty || undefined,
      },
      grammar,
      onToken(chunk) {
        count += chunk.length;
        for (const token of chunk) produced.push(token);
      },
      onTextChunk(text) {
        emit({ event: "tokens", id: cmd.id, count, text });
        count = 0;
      },
    });
    const context = [...tokens, ...produced];
    emit({ event: "done", id: cmd.id, reason: REASONS[result.metadata.stopReason] ?? "stop", context });
  } finally {
    runs.delete(cmd.id);
    pool.give(slot);
  }
}

function embedContext(size) {
  if (embedder === null || embedder.size !== size) {
    const previous = embedder;
    embedder = { size, context: model.createEmbeddingContext({ contextSize: size, threads }) };
    if (previous) previous.context.then((c) => c.dispose()).catch(() => {});
  }
  return embedder.context;
}

// One embedding request at a time: they share one embedding context.
function embed(cmd) {
  const job = embedQueue.then(async () => {
    const context = await embedContext(cmd.context_size);
    const vectors = [];
    const counts = [];
    const bos = model.tokens.shouldPrependBosToken ? 1 : 0;
    for (const text of cmd.texts) {
      const tokens = model.tokenize(text, false, "trimLeadingSpace");
      counts.push(bos + tokens.length);
      const kept = tokens.slice(0, Math.max(1, cmd.context_size - bos - 1));
      const embedding = await context.getEmbeddingFor(kept);
      vectors.push(Array.from(embedding.vector));
    }
    emit({ event: "embedded", id: cmd.id, vectors, counts });
  });
  embedQueue = job.catch(() => {});
  return job;
}

const HANDLERS = {
  open,
  close,
  generate,
  embed,
  async cancel(cmd) {
    runs.get(cmd.id)?.abort();
  },
  async tokenize(cmd) {
    emit({ event: "tokenized", id: cmd.id, tokens: model.tokenize(cmd.text, false, "trimLeadingSpace") });
  },
  async shutdown() {
    for (const abort of runs.values()) abort.abort();
    flush();
    process.exit(0);
  },
};

let loaded = null;
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    process.stderr.write(`bad command line: ${line.slice(0, 200)}\n`);
    return;
  }
  if (cmd.cmd === "load") {
    loaded = load(cmd).catch((error) => fatal(`cannot load the model: ${message(error)}`));
    return;
  }
  const handler = HANDLERS[cmd.cmd];
  if (!handler) {
    emit({ event: "failed", id: cmd.id, error: `unknown command ${cmd.cmd}` });
    return;
  }
  (loaded ?? Promise.reject(new Error("no model loaded")))
    .then(() => handler(cmd))
    .catch((error) => emit({ event: "failed", id: cmd.id, error: message(error) }));
});
lines.on("close", () => {
  flush();
  process.exit(0);
});
