// One stream's measurements, the Ollama NDJSON chunks that feed them, and the direct HTTP path.

// A stream's states, shown in its pane.
export const State = Object.freeze({
  WAITING: "waiting",
  STREAMING: "streaming",
  DONE: "done",
  ERROR: "error",
  CANCELLED: "cancelled",
  LOST: "lost", // NKN only: the relay went silent past the page's limit (`relay_silence_ms`)
});

const FINAL = new Set([State.DONE, State.ERROR, State.CANCELLED, State.LOST]);

// What one stream has seen so far. Times come from performance.now() (milliseconds).
export class StreamRecord {
  constructor(index, startedMs) {
    this.index = index;
    this.startedMs = startedMs;
    this.state = State.WAITING;
    this.text = "";
    this.tokens = 0; // streamed text chunks: Ollama sends one token per chunk
    this.evalCount = null; // the server's own count, from the final chunk
    this.firstTokenMs = null;
    this.lastTokenMs = null;
    this.error = null;
    this.frames = 0; // NKN only: relay frames received for this stream
    this.keepalives = 0;
  }

  get ttftMs() {
    return this.firstTokenMs === null ? null : this.firstTokenMs - this.startedMs;
  }

  // Decode rate after the first token: prefill time belongs to TTFT, not to tokens/s.
  get tokensPerSecond() {
    if (this.firstTokenMs === null || this.lastTokenMs === null) return null;
    const span = (this.lastTokenMs - this.firstTokenMs) / 1000;
    const count = this.evalCount ?? this.tokens;
    return span > 0 && count > 1 ? (count - 1) / span : null;
  }

  get finished() {
    return FINAL.has(this.state);
  }

  // No word from the relay for too long: the stream may still run there, but nobody can tell.
  lose(message) {
    if (this.finished) return;
    this.state = State.LOST;
    this.error = message;
  }

  fail(message) {
    if (this.finished) return;
    this.state = State.ERROR;
    this.error = message;
  }

  cancel() {
    if (this.finished) return;
    this.state = State.CANCELLED;
  }

  // Apply one parsed Ollama chunk (/api/generate). Returns the number of new tokens.
  applyChunk(chunk, nowMs) {
    if (this.finished) return 0;
    if (chunk === null || typeof chunk !== "object") {
      this.fail("bad chunk from the server: not a JSON object");
      return 0;
    }
    if (typeof chunk.error === "string" && chunk.error) {
      this.fail(chunk.error);
      return 0;
    }
    let added = 0;
    const piece = typeof chunk.response === "string" ? chunk.response : "";
    if (piece) {
      if (this.firstTokenMs === null) this.firstTokenMs = nowMs;
      this.lastTokenMs = nowMs;
      this.text += piece;
      this.tokens += 1;
      added = 1;
    }
    if (this.state === State.WAITING) this.state = State.STREAMING;
    if (chunk.done === true) {
      if (Number.isInteger(chunk.eval_count)) this.evalCount = chunk.eval_count;
      this.state = State.DONE;
    }
    return added;
  }

  // The body ended: without a final `done` chunk the stream was cut, never a success.
  endOfStream() {
    if (!this.finished) this.fail("stream cut: the response ended before its final chunk");
  }
}

// Splits a byte stream into NDJSON lines, keeping the partial last line for the next read.
export class LineSplitter {
  constructor() {
    this.decoder = new TextDecoder();
    this.rest = "";
  }

  push(bytes) {
    this.rest += this.decoder.decode(bytes, { stream: true });
    const parts = this.rest.split("\n");
    this.rest = parts.pop();
    return parts.filter((line) => line.trim() !== "");
  }

  finish() {
    const tail = (this.rest + this.decoder.decode()).trim();
    this.rest = "";
    return tail ? [tail] : [];
  }
}

export function parseLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

// Human text for a failed fetch: the browser hides the reason, so name the likely ones. The
// flags named are real: `invoke up --cors-origins` hands the origin to the farm's proxy.
export function describeFetchError(error, url) {
  if (error && error.name === "AbortError") return "cancelled";
  const origin = location.origin;
  return (
    `cannot reach ${url} (${error && error.message ? error.message : error}): is the farm ` +
    `running, and does its proxy allow this page's origin? Start it with ` +
    `invoke up --cors-origins ${origin} (or python -m farm.proxy --cors-origins ${origin}).`
  );
}

// Run one streamed /api/generate straight against the proxy, feeding `record`.
// `onUpdate(addedTokens)` runs after every change. Never throws.
export async function runDirect({ proxyUrl, body, record, signal, onUpdate }) {
  const url = `${proxyUrl}/api/generate`;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal.aborted) record.cancel();
    else record.fail(describeFetchError(error, url));
    onUpdate(0);
    return;
  }
  if (!response.ok) {
    record.fail(await httpErrorMessage(response));
    onUpdate(0);
    return;
  }
  const reader = response.body.getReader();
  const splitter = new LineSplitter();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const line of splitter.push(value)) feedLine(record, line, onUpdate);
      if (record.finished) break;
    }
    for (const line of splitter.finish()) feedLine(record, line, onUpdate);
    record.endOfStream();
  } catch (error) {
    if (signal.aborted) record.cancel();
    else record.fail(`stream cut: ${error && error.message ? error.message : error}`);
  } finally {
    reader.cancel().catch(() => {});
  }
  onUpdate(0);
}

function feedLine(record, line, onUpdate) {
  const chunk = parseLine(line);
  if (chunk === null) {
    record.fail(`bad line from the server: ${line.slice(0, 120)}`);
    onUpdate(0);
    return;
  }
  onUpdate(record.applyChunk(chunk, performance.now()));
}

// "HTTP 503: <the server's error field or text>".
export async function httpErrorMessage(response) {
  let detail = "";
  try {
    const text = await response.text();
    const parsed = parseLine(text);
    detail = parsed && typeof parsed.error === "string" ? parsed.error : text.slice(0, 200);
  } catch {
    detail = response.statusText;
  }
  return `HTTP ${response.status}${detail ? `: ${detail}` : ""}`;
}
