"""Seeded latency model: one lognormal per pipeline stage, fitted to its (p50, p95).

mu = ln(p50), sigma = (ln(p95) - ln(p50)) / 1.645, so the distribution's median is p50 and its 95th
percentile is p95. In "fixed" mode every draw is exactly p50. The math is in pure functions.
"""

from __future__ import annotations

import math
import random

from target.settings import STAGES, Settings

Z_95 = 1.645  # standard normal quantile of 0.95, as written in the design contract


def lognormal_params(p50_ms: float, p95_ms: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal whose median is p50_ms and whose 95th percentile is p95_ms."""
    if p50_ms <= 0 or p95_ms < p50_ms:
        raise ValueError(f"need 0 < p50 <= p95, got p50={p50_ms} p95={p95_ms}")
    mu = math.log(p50_ms)
    return mu, (math.log(p95_ms) - mu) / Z_95


def draw_ms(rng: random.Random, p50_ms: float, p95_ms: float, mode: str) -> float:
    """One delay in ms: p50 in "fixed" mode, else a lognormal draw fitted to (p50, p95)."""
    if mode == "fixed":
        return float(p50_ms)
    mu, sigma = lognormal_params(p50_ms, p95_ms)
    return rng.lognormvariate(mu, sigma) if sigma > 0 else float(p50_ms)


class LatencyModel:
    """Draws modelled stage delays (ms) from one seeded random.Random."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.latency_mode
        self.rng = random.Random(settings.seed)
        self.quantiles = {s: (getattr(settings, f"{s}_ms"), getattr(settings, f"{s}_p95_ms")) for s in STAGES}

    def draw(self, stage: str) -> float:
        """Delay in ms for `stage` (one of settings.STAGES)."""
        p50, p95 = self.quantiles[stage]
        return draw_ms(self.rng, p50, p95, self.mode)
