"""`callcenter`: a day of calls per hour, compressed into the test duration. Each hour runs the number of
concurrent calls Little's law gives for it (concurrent calls = arrivals per second x average handle
time), one Locust user per concurrent call. Phases: "hour 09 (420 calls/h)".

The default profile is a medical call centre's weekday: urgent lines only at night, the opening rush for
same-day appointments at 08:00-10:00, a lunch dip, a second peak for results and prescriptions in the
afternoon, and a slow evening. Override it with 24 comma-separated values (calls per hour from 00:00).
"""

from __future__ import annotations

import math
from argparse import Namespace
from collections.abc import Sequence

from shapes.base import Shape, ShapeError, ShapeOption, Step, check_seconds, plural, require, resolve_spawn_rate, round_users

MEDICAL_DAY_CALLS_PER_HOUR = (14, 10, 8, 7, 8, 12, 30, 110, 380, 420, 360, 300,
                              220, 260, 300, 280, 230, 160, 100, 70, 55, 40, 28, 20)


def parse_profile(text: str) -> tuple[float, ...]:
    """'14,10,...' -> 24 calls-per-hour values, each a number >= 0."""
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ShapeError(f"--callcenter-profile: {item.strip()!r} is not a number of calls per hour") from None
        require(math.isfinite(value) and value >= 0,
                f"--callcenter-profile: calls per hour must be 0 or more, got {item.strip()}")
        values.append(value)
    require(len(values) == 24, f"--callcenter-profile needs 24 values (calls per hour from 00:00), got {len(values)}")
    return tuple(values)


def parse_hours(text: str) -> tuple[int, int]:
    """'8-18' -> (8, 18): run the hours from 08:00 up to 18:00."""
    start, _, end = text.partition("-")
    try:
        hours = int(start), int(end)
    except ValueError:
        raise ShapeError(f"--callcenter-hours: expected START-END such as 8-18, got {text!r}") from None
    require(0 <= hours[0] < hours[1] <= 24, f"--callcenter-hours must be START-END with 0 <= START < END <= 24, got {text!r}")
    return hours


def concurrent_calls(calls_per_hour: float, handle_time_s: float) -> float:
    """Little's law: calls in progress = arrival rate (calls/s) x average handle time (s)."""
    return calls_per_hour / 3600 * handle_time_s


class CallCenterShape(Shape):
    """The hours `hours[0]`..`hours[1]-1` of `calls_per_hour`, each for duration_s / number of hours."""

    name = "callcenter"
    options = (
        ShapeOption("--callcenter-profile", str, ",".join(str(v) for v in MEDICAL_DAY_CALLS_PER_HOUR),
                    "callcenter: 24 comma-separated calls-per-hour values from 00:00 (default: a medical call centre's day)"),
        ShapeOption("--callcenter-hours", str, "0-24", "callcenter: the hours of the day to run, START-END (e.g. 8-18)"),
        ShapeOption("--callcenter-handle-time", float, 300.0, "callcenter: average handle time of a call in seconds"),
        ShapeOption("--calls-per-hour-peak", float, 0.0,
                    "callcenter: scale the profile so its busiest hour has this many calls per hour (0: as given)"),
        ShapeOption("--callcenter-duration", float, 480.0, "callcenter: seconds the chosen hours are compressed into"),
    )

    def __init__(self, calls_per_hour: Sequence[float], handle_time_s: float, duration_s: float,
                 hours: tuple[int, int] = (0, 24), peak_calls_per_hour: float = 0.0, spawn_rate: float = 0.0) -> None:
        require(len(calls_per_hour) == 24, f"--callcenter-profile needs 24 values, got {len(calls_per_hour)}")
        require(all(math.isfinite(v) and v >= 0 for v in calls_per_hour),
                "--callcenter-profile: calls per hour must be 0 or more")
        require(max(calls_per_hour) > 0, "--callcenter-profile has no calls in any hour")
        check_seconds(handle_time_s, "--callcenter-handle-time")
        check_seconds(duration_s, "--callcenter-duration")
        require(0 <= hours[0] < hours[1] <= 24, f"--callcenter-hours must have 0 <= START < END <= 24, got {hours}")
        require(math.isfinite(peak_calls_per_hour) and peak_calls_per_hour >= 0,
                f"--calls-per-hour-peak must be 0 (the profile as given) or a positive number, got {peak_calls_per_hour:g}")
        super().__init__()
        scale = peak_calls_per_hour / max(calls_per_hour) if peak_calls_per_hour > 0 else 1.0
        self.handle_time_s = handle_time_s
        # (hour of day, calls per hour, concurrent calls = users) for each hour that runs
        self.plan = [(hour, calls_per_hour[hour] * scale,
                      round_users(concurrent_calls(calls_per_hour[hour] * scale, handle_time_s)))
                     for hour in range(*hours)]
        self.peak_users = max(users for _, _, users in self.plan)
        require(self.peak_users > 0, f"no hour of --callcenter-hours {hours[0]}-{hours[1]} has a whole concurrent call "
                f"(busiest: {max(c for _, c, _ in self.plan):g} calls/h x {handle_time_s:g} s); "
                "raise --calls-per-hour-peak or --callcenter-handle-time")
        self.duration_s = duration_s
        self.hour_s = duration_s / len(self.plan)
        levels = [0] + [users for _, _, users in self.plan]
        self.spawn_rate = resolve_spawn_rate(spawn_rate, max(abs(b - a) for a, b in zip(levels, levels[1:])))

    @classmethod
    def from_options(cls, options: Namespace) -> CallCenterShape:
        return cls(parse_profile(options.callcenter_profile), options.callcenter_handle_time,
                   options.callcenter_duration, parse_hours(options.callcenter_hours), options.calls_per_hour_peak,
                   options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index = min(len(self.plan) - 1, max(0, int(elapsed_s // self.hour_s)))
        hour, calls, users = self.plan[index]
        return users, self.spawn_rate, f"hour {hour:02d} ({math.floor(calls + 0.5)} calls/h)"

    def summary(self) -> str:
        hour, calls, users = max(self.plan, key=lambda p: p[2])
        first, last = self.plan[0][0], self.plan[-1][0] + 1
        return (f"load shape callcenter: hours {first:02d}-{last:02d} in {self.duration_s:g} s ({self.hour_s:g} s per hour); "
                f"busiest hour {hour:02d}: {calls:g} calls/h x {self.handle_time_s:g} s handle time = "
                f"{plural(users)} (concurrent calls)")
