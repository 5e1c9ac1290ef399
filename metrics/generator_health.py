"""Is the load generator itself keeping up? If not, the run's latencies cannot be trusted."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from config import VerdictThresholds


@dataclass(frozen=True)
class GeneratorHealth:
    healthy: bool
    frame_lateness_p99_ms: float | None
    cpu_max_percent: float | None
    cpu_over_limit_fraction: float
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def assess_generator(lateness_p99_ms: float | None, cpu_samples: list[float], thresholds: VerdictThresholds) -> GeneratorHealth:
    """Unhealthy when frame send lateness p99 exceeds its limit, or CPU sat above its limit for
    more than the allowed fraction of the samples."""
    over = sum(1 for c in cpu_samples if c > thresholds.generator_cpu_percent)
    fraction = over / len(cpu_samples) if cpu_samples else 0.0
    problems = []
    if lateness_p99_ms is not None and lateness_p99_ms > thresholds.generator_lateness_p99_ms:
        problems.append(f"audio frames were sent late (p99 {lateness_p99_ms:.1f} ms > {thresholds.generator_lateness_p99_ms:g} ms)")
    if fraction > thresholds.generator_cpu_time_fraction:
        problems.append(f"generator CPU was above {thresholds.generator_cpu_percent:g}% for {fraction:.0%} of the run")
    message = ("generator overloaded: " + "; ".join(problems) + ". Add workers (--processes / more machines) or lower the load."
               if problems else "generator kept its schedule")
    return GeneratorHealth(not problems, lateness_p99_ms, max(cpu_samples) if cpu_samples else None, round(fraction, 3), message)
