// One stream's frames as the seed DM API sends them (relay.response.begin/lines/keepalive/end),
// turned into the sink's calls: lines in seq order (held until their turn, duplicates
// dropped), and one end. The fast path's items arrive here as these same frames (nkn-mux.js).

// `state`: { nextSeq, held: Map, begun, ended }; `sink`: onLine(text), onFrame(kind);
// `finish(errorOrNull)` ends the stream once.
export function onStreamFrame(frame, state, sink, finish) {
  switch (frame.event) {
    case "relay.response.begin":
      state.begun = true;
      sink.onFrame("begin");
      if (frame.ok === false || (frame.status && frame.status >= 400)) {
        state.beginError = frame.error || `HTTP ${frame.status}`;
      }
      break;
    case "relay.response.lines":
      state.begun = true;
      sink.onFrame("lines");
      for (const item of frame.lines || []) {
        if (Number.isInteger(item.seq) && item.seq >= state.nextSeq) state.held.set(item.seq, item.line);
      }
      while (state.held.has(state.nextSeq)) {
        const line = state.held.get(state.nextSeq);
        state.held.delete(state.nextSeq);
        state.nextSeq += 1;
        sink.onLine(line);
      }
      break;
    case "relay.response.keepalive":
      sink.onFrame("keepalive");
      break;
    case "relay.response.end": {
      sink.onFrame("end");
      const delivered = state.nextSeq - 1;
      if (frame.ok === false) finish(relayError(frame));
      else if (Number.isInteger(frame.last_seq) && frame.last_seq > delivered) {
        finish(`stream cut: ${frame.last_seq - delivered} line(s) lost in transit (got ${delivered} of ${frame.last_seq})`);
      } else if (state.beginError) finish(state.beginError);
      else finish(null);
      break;
    }
    case "relay.response":
      // The relay answers a request it refused before streaming with a plain response.
      finish(frame.ok === false ? relayError(frame) : `unexpected non-streamed reply (HTTP ${frame.status})`);
      break;
    default:
      break;
  }
}

export function relayError(frame) {
  if (frame.error) return frame.error;
  if (frame.status) return `HTTP ${frame.status}`;
  return "relay reported a failure without a reason";
}

export function refused(frame) {
  const error = new Error(`relay refused: ${relayError(frame)}`);
  error.refused = true;
  return error;
}
