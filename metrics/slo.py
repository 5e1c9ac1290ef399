"""SLO evaluation and the run verdict: pure functions over summary numbers (docs/design.md, Default SLOs; docs/verdict.md)."""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass
from typing import Mapping

from config import SloTarget, VerdictThresholds

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class SloResult:
    metric: str
    stat: str
    op: str
    target: float
    observed: float | None
    passed: bool | None  # None: no samples in a run that was never going to produce them
    status: str  # pass | miss | fail | no_data
    description: str = ""
    note: str = ""  # why a metric the run should have produced has no samples ("the agent answered 0 of 18 turns")

    def as_dict(self) -> dict:
        return asdict(self)


def observed_value(target: SloTarget, metrics: dict[str, dict], rates: Mapping[str, object]) -> float | None:
    """The number an SLO is judged on: a percentile from `metrics`, or a rate from `rates`."""
    if target.stat == "value":
        value = rates.get(target.metric)
        return value if isinstance(value, (int, float)) else None
    summary = metrics.get(target.metric)
    if not summary or not summary.get("count"):
        return None
    return summary.get(target.stat)


def misses_badly(target: SloTarget, observed: float, factor: float) -> bool:
    """A latency target missed by more than (factor - 1) x target, e.g. > 50 % over."""
    if target.stat == "value" or target.op not in ("<", "<="):
        return False
    return observed > target.target * factor


def evaluate_slos(targets: list[SloTarget], metrics: dict[str, dict], rates: Mapping[str, object],
                  thresholds: VerdictThresholds, unanswered: Mapping[str, str] | None = None) -> list[SloResult]:
    """Each target judged. `unanswered`: metrics the run should have produced but has no samples of, each
    with why (reporting.report.unanswered_notes): those fail; any other metric without samples is no_data."""
    unanswered = unanswered or {}
    results = []
    for target in targets:
        observed = observed_value(target, metrics, rates)
        base = (target.metric, target.stat, target.op, target.target)
        if observed is None:
            if target.metric in unanswered:
                results.append(SloResult(*base, None, False, "fail", target.description, unanswered[target.metric]))
            else:
                results.append(SloResult(*base, None, None, "no_data", target.description))
            continue
        passed = _OPS[target.op](observed, target.target)
        below_floor = target.metric == "success_rate" and observed < thresholds.fail_success_rate_below
        failing = target.on_miss == "fail" or below_floor or misses_badly(target, observed, thresholds.fail_latency_miss_factor)
        status = "pass" if passed else ("fail" if failing else "miss")
        results.append(SloResult(*base, round(observed, 2), passed, status, target.description))
    return results


def _fail_reason(result: SloResult, thresholds: VerdictThresholds) -> str:
    if result.observed is None:
        return f"{result.metric}: {result.note}" if not result.note.startswith(result.metric) else result.note
    if result.stat == "value":
        return f"{result.metric} {result.observed:g}% misses {result.op} {result.target:g}%"
    return (f"{result.metric} {result.stat} {result.observed:g} ms misses {result.op} {result.target:g} by more than "
            f"{(thresholds.fail_latency_miss_factor - 1) * 100:.0f}%")


def verdict(results: list[SloResult], rates: Mapping[str, object], thresholds: VerdictThresholds) -> tuple[str, list[str]]:
    """('pass'|'warn'|'fail', reasons). Fail thresholds first, then any missed target is a warning."""
    reasons: list[str] = []
    success = rates.get("success_rate")
    if isinstance(success, (int, float)) and success < thresholds.fail_success_rate_below:
        label = "call success rate" if rates.get("success_basis") == "calls" else "request success rate"
        reasons.append(f"{label} {success:.1f}% is below {thresholds.fail_success_rate_below:g}%")
    reasons += [_fail_reason(r, thresholds) for r in results
                if r.status == "fail" and not (r.metric == "success_rate" and r.observed is not None)]  # said above
    drops = rates.get("ws_drop_rate")
    if isinstance(drops, (int, float)) and drops > thresholds.fail_ws_drop_pct_above:
        reasons.append(f"{drops:.1f}% of WebSocket connections dropped (limit {thresholds.fail_ws_drop_pct_above:g}%)")
    backend = rates.get("backend_error_rate")
    if isinstance(backend, (int, float)) and backend > thresholds.fail_backend_error_pct_above:
        reasons.append(f"backend service errors {backend:.1f}% (limit {thresholds.fail_backend_error_pct_above:g}%)")
    if reasons:
        return "fail", list(dict.fromkeys(reasons))
    missed = [r for r in results if r.status == "miss"]
    if missed:
        return "warn", [f"{r.metric} {r.stat} {r.observed:g} misses {r.op} {r.target:g}" for r in missed]
    return "pass", []
