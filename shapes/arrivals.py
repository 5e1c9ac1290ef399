"""Open-model arrivals: when calls start, whatever the system's speed (k6's arrival-rate executors,
Gatling's open injection). Pure: a rate over time in, the start times of calls out.

A closed model (a fixed number of callers, each placing its next call when the last one ended) lets a
slow agent slow its own load down; an open model keeps offering calls on schedule, so the calls that
cannot start on time are counted instead (summary.calls_dropped).
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Stage:
    """Over `duration_s`, the rate moves in a straight line from the previous stage's target to `target`."""

    duration_s: float
    target: float  # calls per the schedule's `per`


@dataclass(frozen=True)
class ArrivalSchedule:
    """Calls per `per` (s, m or h): `rate` throughout, or `rate` at the start and then `stages`;
    after the last stage its target holds until `duration_s`."""

    rate: float
    duration_s: float
    per: str = "s"
    stages: tuple[Stage, ...] = ()

    def rate_at(self, t: float) -> float:
        """Calls per second at `t` seconds into the schedule."""
        start, level = 0.0, self.rate
        for stage in self.stages:
            if t < start + stage.duration_s:
                level += (stage.target - level) * (t - start) / stage.duration_s
                return level / SECONDS_PER[self.per]
            start, level = start + stage.duration_s, stage.target
        return level / SECONDS_PER[self.per]

    @property
    def peak_per_s(self) -> float:
        return max([self.rate, *(s.target for s in self.stages)]) / SECONDS_PER[self.per]

    def expected_calls(self, steps: int = 1000) -> float:
        """How many calls the schedule offers on average (the integral of its rate)."""
        width = self.duration_s / steps
        return sum(self.rate_at((i + 0.5) * width) * width for i in range(steps))


def arrival_times(schedule: ArrivalSchedule, rng: random.Random, steps: int = 2000) -> list[float]:
    """When calls arrive (seconds from the schedule's start, increasing): as many as the schedule's rate
    gives over its duration (rounded), each placed at random with the density of the rate then. That is a
    Poisson process given its count: random and bursty from one moment to the next, exact over the run (a
    plain Poisson draw of 60 calls would miss the rate by 13% as often as not)."""
    count = round(schedule.expected_calls(steps))
    if count <= 0:
        return []
    width = schedule.duration_s / steps
    cumulative = [0.0]
    for i in range(steps):
        cumulative.append(cumulative[-1] + schedule.rate_at((i + 0.5) * width) * width)
    times = []
    for _ in range(count):
        target = rng.random() * cumulative[-1]
        i = max(0, bisect.bisect_left(cumulative, target) - 1)
        within = (target - cumulative[i]) / (cumulative[i + 1] - cumulative[i]) if cumulative[i + 1] > cumulative[i] else 0.0
        times.append(min((i + within) * width, schedule.duration_s))
    return sorted(times)


def offered_rate(times: Sequence[float], duration_s: float) -> float:
    """Calls per second that `times` offered over `duration_s`."""
    return len(times) / duration_s if duration_s > 0 else 0.0


def schedule_from_spec(spec: dict) -> tuple[ArrivalSchedule, int, int]:
    """(schedule, max_concurrent, seed) from an --arrivals spec (a dict); KeyError/ValueError on a bad one."""
    stages = tuple(Stage(float(s["duration_s"]), float(s["target"])) for s in spec.get("stages") or ())
    schedule = ArrivalSchedule(float(spec["rate"]), float(spec["duration_s"]), spec.get("per", "s"), stages)
    return schedule, int(spec.get("max_concurrent", 50)), int(spec.get("seed", 1))


def schedule_from_json(text: str) -> tuple[ArrivalSchedule, int, int]:
    """The same from the callers' --arrivals JSON."""
    return schedule_from_spec(json.loads(text))
