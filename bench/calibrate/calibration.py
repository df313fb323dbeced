"""One calibration: probe the backend, fit the timing model, write the profile and the rows.

The profile (`farm.sim.profile`) goes to `--out`; the raw samples, one JSON object per
answer, beside it as `<out>.samples.jsonl`, so a fit can be redone or questioned later.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.calibrate.design import PromptMaker, overlap_plan, probe_plan
from bench.calibrate.fit import Fit, fit_all
from bench.calibrate.probe import Prober, Sample, backend_facts
from bench.calibrate.settings import CalibrateSettings
from bench.machine import gpus
from farm.sim.profile import Profile, write_profile

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Calibration:
    """What a calibration produced."""

    profile: Profile
    path: Path
    samples_path: Path
    fit: Fit


def hardware() -> str:
    """One line: the CPU (model and logical cores) and the GPUs, as far as this host tells."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    found = gpus()
    return f"{cpu}, {cores} logical cores; " + ("GPU: " + "; ".join(found) if found else "no GPU")


async def collect(config: CalibrateSettings) -> tuple[str, str, list[Sample]]:
    """Run the probe set; (model, backend version, samples)."""
    limits = httpx.Limits(max_connections=max(config.concurrency) + 4)
    async with httpx.AsyncClient(
        base_url=config.backend, timeout=config.timeout_s, trust_env=False, limits=limits
    ) as http:
        model, version = await backend_facts(http, config.model)
        prober = Prober(http, model)
        maker = PromptMaker(config.seed)
        await prober.one(maker.job(8, 4), "warm", 0, 1)
        samples: list[Sample] = []
        for number in range(config.loads):
            await prober.unload()
            samples.append(await prober.one(maker.job(8, 1), "load", 0, 1))
            log.info(
                "load %d/%d: %.0f ms", number + 1, config.loads, samples[-1].load_duration_ns / 1e6
            )
        plan = probe_plan(config, maker)
        for number, burst in enumerate(plan, start=1):
            samples += await prober.burst(list(burst.jobs), burst.series)
            log.info("probe %d/%d (%s x%d)", number, len(plan), burst.series, len(burst.jobs))
        pairs = overlap_plan(config, maker) if max(config.concurrency) >= 2 else []
        for number, (decoder, newcomer) in enumerate(pairs, start=1):
            samples += await prober.overlap(decoder, newcomer)
            log.info("overlap %d/%d", number, len(pairs))
    return model, version, samples


def measured_facts(
    config: CalibrateSettings, model: str, version: str, samples: list[Sample], fit: Fit
) -> dict[str, Any]:
    """The profile's `[measured]` table: provenance and probe design."""
    facts: dict[str, Any] = {
        "model": model,
        "backend": config.backend,
        "backend_version": version,
        "hardware": hardware(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "num_parallel": config.slots,
        "concurrency": list(config.concurrency),
        "prompt_words": list(config.prompt_words),
        "output_tokens": list(config.output_tokens),
        "repeats": config.repeats,
        "prefill_repeats": config.prefill_repeats,
        "loads": config.loads,
        "samples": len(samples),
    }
    facts.update(fit.facts)
    if config.note:
        facts["note"] = config.note
    return facts


async def calibrate(config: CalibrateSettings) -> Calibration:
    """Probe, fit, and write the profile and its samples."""
    model, version, samples = await collect(config)
    fit = fit_all(samples)
    profile = Profile(
        timing=fit.timing,
        measured=measured_facts(config, model, version, samples, fit),
        residuals={k: round(v, 4) for k, v in fit.residuals.items()},
    )
    header = (
        "ollama-farm simulator profile, written by `invoke calibrate`.\n"
        "Use: python -m farm.sim --profile FILE, or invoke up --mode sim --profile FILE.\n"
        "[residuals]: (fitted - measured) / measured at each probe point."
    )
    write_profile(config.out, profile, header)
    samples_path = config.out.with_name(config.out.name + ".samples.jsonl")
    samples_path.write_text(
        "".join(json.dumps(asdict(s)) + "\n" for s in samples), encoding="utf-8"
    )
    return Calibration(profile, config.out, samples_path, fit)
