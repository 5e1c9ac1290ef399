"""--find-capacity: step the calls up until an SLO or the 80 % call success floor breaks; the largest level
that held is the capacity, and the first level that broke is the knee, with the metric that broke.
Pure: reads the run's phases[] (each step's exact metrics and calls judged against the SLOs)."""

from __future__ import annotations

SUCCESS_FLOOR = 80.0


def step_verdicts(phases: list[dict]) -> list[dict]:
    """Each step: calls, success rate, voice_loop p95, whether it held, and what broke."""
    steps = []
    for phase in phases:
        broken = list(phase.get("slo_broken") or [])
        success = phase.get("success_rate")
        if success is not None and success < SUCCESS_FLOOR:
            broken.append({"metric": "success_rate", "stat": "value", "observed": success, "target": SUCCESS_FLOOR})
        # a step shorter than its calls has no call ending in it: it is judged on what it measured
        measured = success is not None or bool(phase.get("voice_loop_count"))
        held = measured and not broken
        steps.append({"calls": phase.get("users"), "success_rate": success, "voice_loop_p95": phase.get("voice_loop_p95"),
                      "held": held, "broken": broken})
    return steps


def find_capacity(phases: list[dict]) -> dict:
    """The capacity (largest number of calls of a step that held, before the first that did not), the
    knee (that first broken step and its broken metrics, the first listed being the one that broke
    first in SLO order) and every step."""
    steps = step_verdicts(phases)
    knee = next((step for step in steps if not step["held"]), None)
    before = steps[: steps.index(knee)] if knee else steps
    return {"capacity_calls": max((s["calls"] for s in before if s["held"]), default=0),
            "knee": None if knee is None else {"calls": knee["calls"], "broken": knee["broken"],
                                               "first_broken": knee["broken"][0]["metric"] if knee["broken"] else "no data"},
            "steps": steps}


def capacity_line(capacity: dict) -> str:
    """One line for the terminal."""
    knee = capacity["knee"]
    if knee is None:
        return f"capacity: every step held, up to {capacity['capacity_calls']} concurrent calls (raise --capacity-max)"
    first = knee["broken"][0] if knee["broken"] else None
    broke = ("no samples" if first is None else f"{first['metric']} ({first['note']})" if first.get("note") else
             f"{first['metric']} {first['stat']} {first['observed']} vs {first['target']}")
    return (f"capacity: {capacity['capacity_calls']} concurrent calls held every SLO; at {knee['calls']} calls "
            f"{broke} broke first")
