"""`CalibrateSettings`: the probe design, the backend and where the profile goes.

One class serves both verbs: calibrating (the default) and `--validate FILE`. A field is
named after its flag; sizes are in the units their names say.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydantic import field_validator, model_validator

from bench.settings import stream_counts
from farm.settings import ServiceSettings, setting

# The verb is spelt `--validate FILE`, and a flag is its field's name; the field shadows
# pydantic v1's deprecated `BaseModel.validate` classmethod, which nothing here calls.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "validate" in "CalibrateSettings"')

    class CalibrateSettings(ServiceSettings):
        """A calibration (or, with `validate`, a validation) run against one backend."""

        prog = "python -m bench.calibrate"
        summary = (
            "Fit the simulator's timing model to a backend and write a profile (TOML); "
            "--validate FILE compares a held-out workload on the backend and on the profile's twin."
        )

        backend: str = setting("http://127.0.0.1:11434", help="the Ollama API to measure")
        model: str | None = setting(None, help="model to measure (default: the backend's first)")
        out: Path = setting(Path("profile.toml"), help="where the profile goes")
        validate: Path | None = setting(  # type: ignore[assignment]
            None,
            help="validate this profile instead of calibrating (held-out workload)",
            metavar="FILE",
        )
        num_parallel: int | None = setting(
            None,
            help="the backend's OLLAMA_NUM_PARALLEL, which the twin gets too "
            "(default: the highest --concurrency)",
            ge=1,
        )
        concurrency: tuple[int, ...] = setting(
            (1, 2, 4), help="probe concurrency levels, at most NUM_PARALLEL (comma list)"
        )
        prompt_words: tuple[int, ...] = setting(
            (8, 64, 256), help="probe prompt lengths in words (comma list)"
        )
        output_tokens: tuple[int, ...] = setting(
            (16, 48), help="probe answer lengths in tokens (num_predict, comma list)"
        )
        repeats: int = setting(3, help="how often each concurrency x output probe is sent", ge=1)
        prefill_repeats: int = setting(
            10, help="how often each prompt length is evaluated alone (prefill probes)", ge=2
        )
        loads: int = setting(6, help="how many cold loads to time", ge=0)
        validate_concurrency: tuple[int, ...] = setting(
            (3,), help="--validate: closed-loop users per held-out level (comma list)"
        )
        validate_requests: int = setting(
            24, help="--validate: requests per held-out level, per side", ge=4
        )
        seed: int = setting(0, help="seed of the prompts and the held-out mix")
        timeout_s: float = setting(300.0, help="seconds one request may take", gt=0)
        note: str = setting("", help="a line recorded in the profile (e.g. 'machine under load')")
        log_level: str = setting("warning", help="logging level", metavar="LEVEL")

        @field_validator(
            "concurrency", "prompt_words", "output_tokens", "validate_concurrency", mode="before"
        )
        @classmethod
        def _counts(cls, value: object) -> object:
            return stream_counts(value)

        @model_validator(mode="after")
        def _fits_together(self) -> CalibrateSettings:
            if 1 not in self.concurrency:
                raise ValueError("--concurrency must include 1 (the step time of one slot)")
            if len(self.prompt_words) < 2:
                raise ValueError("--prompt-words needs two lengths or more (cost per token)")
            if min(self.output_tokens) < 4:
                raise ValueError("--output-tokens: at least 4 tokens per answer")
            top = max(self.concurrency)
            if self.num_parallel is not None and top > self.num_parallel:
                raise ValueError(
                    f"--num-parallel {self.num_parallel}: a probe level of {top} would queue; "
                    "lower --concurrency"
                )
            return self

        @property
        def slots(self) -> int:
            """The backend's parallel slots, as the twin gets them."""
            return self.num_parallel or max(self.concurrency)
