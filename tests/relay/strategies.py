"""Hypothesis strategies for DM fuzzing: JSON shaped like relay frames, wrong types mixed in."""

from __future__ import annotations

from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
events = st.sampled_from(
    ["relay.http", "relay.ping", "relay.info", "relay.cancel", "relay.pong",
     "relay.response", "relay.response.begin", "relay.response.lines",
     "relay.response.keepalive", "relay.response.end", "other"]
)  # fmt: skip
req_fields = st.fixed_dictionaries(
    {},
    optional={
        "service": json_values | st.just("ollama"),
        "url": json_values,
        "path": json_values | st.text(max_size=30),
        "method": json_values | st.sampled_from(["GET", "post", "PUT"]),
        "headers": json_values | st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
        "json": json_values,
        "body_b64": json_values | st.sampled_from(["", "AAEC", "====", "YQ=="]),
        "timeout_ms": json_values | st.integers(),
        "verify": json_values,
        "stream": json_values | st.sampled_from(["chunks", "dm", "1", "on"]),
    },
)
frames_like = st.fixed_dictionaries(
    {"event": events},
    optional={
        "id": json_values | st.text(min_size=1, max_size=10),
        "req": req_fields | json_values,
        "lines": st.lists(
            st.fixed_dictionaries({}, optional={"seq": json_values, "ts": json_values,
                                                 "line": json_values}), max_size=3) | json_values,
        "ok": json_values, "status": json_values, "headers": json_values, "ts": json_values,
        "addr": json_values, "error": json_values, "services": json_values,
    },
)  # fmt: skip
