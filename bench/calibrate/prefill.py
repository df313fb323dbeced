"""The cost of one prompt evaluation alone: a fixed part plus a part per prompt token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.calibrate.errors import FitError


@dataclass(frozen=True, slots=True)
class PrefillLine:
    """Lone prompt evaluation: seconds = base_s + per_token_s * backend tokens."""

    base_s: float
    per_token_s: float

    def at(self, tokens: float) -> float:
        """Predicted seconds for a prompt of `tokens` backend tokens."""
        return self.base_s + self.per_token_s * tokens


def fit_line(tokens: Sequence[float], seconds: Sequence[float]) -> PrefillLine:
    """The weighted least-squares line of evaluation time against prompt tokens (weights
    1/y²: jitter scales each duration)."""
    x = np.asarray(tokens, dtype=float)
    y = np.asarray(seconds, dtype=float)
    if len(set(x.tolist())) < 2:
        raise FitError("the prefill probes have one prompt length; give --prompt-words 8,256")
    weights = 1 / np.maximum(y, 1e-6)
    design = np.stack([np.ones_like(x), x], axis=1) * weights[:, None]
    (base, per_token), *_ = np.linalg.lstsq(design, y * weights, rcond=None)
    if base < 0:  # a negative fixed cost is noise: refit through the origin
        base, per_token = 0.0, float(np.sum(weights**2 * x * y) / np.sum((weights * x) ** 2))
    return PrefillLine(float(base), float(per_token))
