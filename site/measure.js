// The page's pure measurements: the chart's rate over a sliding window and the run's TTFT
// summary. Times are performance.now() milliseconds passed in, so tests can feed exact ones.

// Tokens per second over the last `windowMs`, or over the time since `originMs` (the run's
// first token) when that is shorter: a full window counted from before any token would draw a
// ramp from 0 that the farm never had. `arrivals` is sorted (oldest first).
export function windowRate(arrivals, nowMs, originMs, windowMs) {
  const spanMs = Math.min(windowMs, nowMs - originMs);
  if (!(spanMs > 0)) return 0;
  const cutoff = nowMs - spanMs;
  let count = 0;
  for (let i = arrivals.length - 1; i >= 0 && arrivals[i] >= cutoff; i--) count += 1;
  return count / (spanMs / 1000);
}

// TTFT over every stream of the run: a stream still waiting counts as at least its wait so far
// (`provisional` says how many did), so a summary taken mid-run never looks better than the run.
// Streams that ended without a token (error, lost, cancelled) are left out and counted elsewhere.
export function ttftSummary(records, nowMs) {
  const values = [];
  let provisional = 0;
  for (const record of records) {
    if (record.ttftMs !== null) values.push(record.ttftMs);
    else if (!record.finished) {
      values.push(nowMs - record.startedMs);
      provisional += 1;
    }
  }
  values.sort((a, b) => a - b);
  if (!values.length) return { p50Ms: null, maxMs: null, provisional, counted: 0 };
  return { p50Ms: quantile(values, 0.5), maxMs: values[values.length - 1], provisional, counted: values.length };
}

export function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// "1 frame", "3 frames".
export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
