"""The relay at scale: what 1, 9 and 256 concurrent streams cost over NKN, with and without loss.

`python -m bench.relay_scale` (`invoke relay-bench`) starts the simulator (synthetic engine,
answers of exactly `--max-tokens` tokens) and the farm proxy in front of it, measures every
level's streams straight to the proxy, then, for each `--loss`, a local NKN test node (not the
real NKN network) that drops that fraction of the messages each way, the relay in its own
process and the peers (`bench.scale_rig`), over every `--paths` peer path. It prints one table
(`bench.scale_table` says how each column is computed) and writes the raw rows, the node's and
relay's counts and the summary (schema version, full config, machine) under
`results/relay_scale/<utc time>/`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.errors import BenchError
from bench.machine import machine_facts
from bench.scale_probe import Label, StreamRow, body, direct_one
from bench.scale_rig import ScenarioRecord, client_keywords, measure_relay
from bench.scale_settings import Plan, RelayScaleSettings
from bench.scale_table import render, summarize
from farm.proxy.child import ProxyServer
from farm.settings import Loaded, run_main
from farm.sim.child import SimServer

SCHEMA_VERSION = 1
#: An answer length the simulator never reaches first: `num_predict` always ends the answer.
UNREACHED_TOKENS = 1_000_000


async def measure_direct(plan: Plan, proxy_url: str) -> list[StreamRow]:
    """Every level's streams straight to the proxy: the baseline of the `+` columns."""
    rows: list[StreamRow] = []
    most = max(level.streams for level in plan.levels)
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as http:
        warm = Label("direct", 1, 1, 0.0, -1, 0)
        await direct_one(http, proxy_url, body("warm up", 4), 5, warm)
        for level in plan.levels:
            prompts = [f"scale prompt {plan.seed}-{i}" for i in range(plan.rounds * level.streams)]
            for r in range(plan.rounds):
                batch = prompts[r * level.streams : (r + 1) * level.streams]
                label = Label("direct", level.streams, level.peers, 0.0, r, 0)
                rows += await asyncio.gather(
                    *(
                        direct_one(
                            http, proxy_url, body(p, plan.max_tokens), plan.lines_expected, label
                        )
                        for p in batch
                    )
                )
    return rows


def run_scale(
    config: RelayScaleSettings, environ: Mapping[str, str]
) -> tuple[list[StreamRow], list[ScenarioRecord]]:
    """Every measurement: direct first, then each loss level on its own node and relay."""
    for path in config.paths:
        client_keywords(path)  # a path this tree lacks fails now, before anything starts
    plan = config.plan()
    most = max(level.streams for level in plan.levels)
    # The peers' bridges and the relay take their environment from the entry point, without
    # the caller's own relay settings (an allowlist there would refuse the bench's peers).
    env = {k: v for k, v in environ.items() if not k.startswith(("NKN_", "RELAY_"))}
    with (
        SimServer(
            num_parallel=most, load_ms=0, decode_ms=config.decode_ms, seed=config.seed,
            response_tokens=str(UNREACHED_TOKENS),
        ) as sim,
        ProxyServer(backends=[sim.url], num_parallel=most, access_log=False) as proxy,
        tempfile.TemporaryDirectory(prefix="relay-scale-") as work,
    ):  # fmt: skip
        rows = asyncio.run(measure_direct(plan, proxy.url))
        records: list[ScenarioRecord] = []
        for loss in config.loss:
            got, recs = measure_relay(plan, loss, proxy.url, Path(work), env)
            rows += got
            records += recs
    return rows, records


def write_result(
    config: RelayScaleSettings, rows: Sequence[StreamRow], records: Sequence[ScenarioRecord]
) -> tuple[Path, str]:
    """Raw rows, records and the summary under a timestamped folder; returns it and the table."""
    summary = summarize(rows, records)
    out = config.out_dir / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.jsonl").write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in rows))
    (out / "records.jsonl").write_text(
        "".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in records)
    )
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "config": config.model_dump(mode="json"),
        "network": "local NKN test node (loopback), relay process, simulator behind the proxy",
        "machine": machine_facts(),
        "summary": summary,
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2))
    table = render(summary)
    (out / "table.md").write_text(table)
    return out, table


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay-at-scale benchmark and print its table."""
    return run_main(RelayScaleSettings, _bench, argv)


def _bench(loaded: Loaded[RelayScaleSettings]) -> int:
    config = loaded.settings
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)  # one progress line per scenario
    try:
        rows, records = run_scale(config, loaded.environ)
    except BenchError as exc:
        sys.stderr.write(f"{config.prog}: error: {exc}\n")
        return 2
    out, table = write_result(config, rows, records)
    print(table, end="")
    print(f"raw rows, node counts and summary: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
