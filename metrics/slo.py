"""SLO evaluation and the run verdict: pure functions over summary numbers (DESIGN.md, Default SLOs)."""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass

from config import SloTarget, VerdictThresholds

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class SloResult:
    metric: str
    stat: str
    op: str
    target: float
    observed: float | None
    passed: bool | None  # None: no samples, so neither passed nor failed
    status: str  # pass | miss | fail | no_data
    description: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def observed_value(target: SloTarget, metrics: dict[str, dict], rates: dict[str, float | None]) -> float | None:
    """The number an SLO is judged on: a percentile from `metrics`, or a rate from `rates`."""
    if target.stat == "value":
        return rates.get(target.metric)
    summary = metrics.get(target.metric)
    if not summary or not summary.get("count"):
        return None
    return summary.get(target.stat)


def misses_badly(target: SloTarget, observed: float, factor: float) -> bool:
    """A latency target missed by more than (factor - 1) x target, e.g. > 50 % over."""
    if target.stat == "value" or target.op not in ("<", "<="):
        return False
    return observed > target.target * factor


def evaluate_slos(
    targets: list[SloTarget], metrics: dict[str, dict], rates: dict[str, float | None], thresholds: VerdictThresholds
) -> list[SloResult]:
    results = []
    for target in targets:
        observed = observed_value(target, metrics, rates)
        if observed is None:
            results.append(SloResult(target.metric, target.stat, target.op, target.target, None, None, "no_data", target.description))
            continue
        passed = _OPS[target.op](observed, target.target)
        status = "pass" if passed else ("fail" if misses_badly(target, observed, thresholds.fail_latency_miss_factor) else "miss")
        results.append(SloResult(target.metric, target.stat, target.op, target.target, round(observed, 2), passed, status, target.description))
    return results


def verdict(results: list[SloResult], rates: dict[str, float | None], thresholds: VerdictThresholds) -> tuple[str, list[str]]:
    """('pass'|'warn'|'fail', reasons). Fail thresholds first, then any missed target is a warning."""
    reasons: list[str] = []
    success = rates.get("success_rate")
    if success is not None and success < thresholds.fail_success_rate_below:
        reasons.append(f"success rate {success:.1f}% is below {thresholds.fail_success_rate_below:g}%")
    for result in results:
        if result.status == "fail":
            reasons.append(f"{result.metric} {result.stat} {result.observed:g} ms misses {result.op} {result.target:g} by more than "
                           f"{(thresholds.fail_latency_miss_factor - 1) * 100:.0f}%")
    drops = rates.get("ws_drop_rate")
    if drops is not None and drops > thresholds.fail_ws_drop_pct_above:
        reasons.append(f"{drops:.1f}% of WebSocket connections dropped (limit {thresholds.fail_ws_drop_pct_above:g}%)")
    backend = rates.get("backend_error_rate")
    if backend is not None and backend > thresholds.fail_backend_error_pct_above:
        reasons.append(f"backend service errors {backend:.1f}% (limit {thresholds.fail_backend_error_pct_above:g}%)")
    if reasons:
        return "fail", reasons
    missed = [r for r in results if r.status == "miss"]
    if missed:
        return "warn", [f"{r.metric} {r.stat} {r.observed:g} misses {r.op} {r.target:g}" for r in missed]
    return "pass", []
