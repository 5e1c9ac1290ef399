"""What every voiceload load shape shares: a pure schedule of elapsed seconds (`users_at`), Locust's
`tick()` on top of it, and the name of the current phase (`phase`) for the report's per-phase split.

This module does not import Locust (importing Locust monkey-patches with gevent), so the schedules can be
tested with a fake clock in any process; shapes/install.py makes them Locust LoadTestShapes.
"""

from __future__ import annotations

import math
import time
from argparse import Namespace
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

MAX_AUTO_SPAWN_RATE = 100.0  # users/s; Locust warns above this
Step = tuple[int, float, str]  # (users, spawn rate in users/s, phase name)


class ShapeError(ValueError):
    """A shape option has a bad value; the message is one line that names the option."""


@dataclass(frozen=True)
class ShapeOption:
    """One command-line option of a shape (also an environment variable and a web UI field)."""

    flag: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env_var(self) -> str:
        return "VOICELOAD_" + self.dest.upper()


SPAWN_RATE_OPTION = ShapeOption("--shape-spawn-rate", float, 0.0,
                                "users started/stopped per second at each change of the shape (0: each change within "
                                f"about a second, at most {MAX_AUTO_SPAWN_RATE:g}/s; burst uses its ramp-up instead)")


def round_users(value: float) -> int:
    """Nearest whole number of users, halves up (2.5 -> 3), never negative."""
    return max(0, math.floor(value + 0.5))


def plural(users: int) -> str:
    return f"{users} user" if users == 1 else f"{users} users"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


def check_users(value: int, flag: str, minimum: int = 1) -> None:
    require(value >= minimum, f"{flag} must be at least {minimum}, got {value}")


def check_seconds(value: float, flag: str, unit: str = "seconds") -> None:
    require(math.isfinite(value) and value > 0, f"{flag} must be a positive number of {unit}, got {value:g}")


def resolve_spawn_rate(spawn_rate: float, largest_change: float) -> float:
    """The given rate, or (0) one that makes the largest change of the schedule in about a second."""
    require(math.isfinite(spawn_rate) and spawn_rate >= 0,
            f"--shape-spawn-rate must be 0 (automatic) or a positive number of users per second, got {spawn_rate:g}")
    if spawn_rate > 0:
        return float(spawn_rate)
    return min(MAX_AUTO_SPAWN_RATE, max(1.0, float(largest_change)))


def segment(elapsed_s: float, length_s: float, count: int) -> tuple[int, float]:
    """Which of `count` equal segments of `length_s` holds `elapsed_s`, and the time into it."""
    index = min(count - 1, max(0, int(elapsed_s // length_s)))
    return index, elapsed_s - index * length_s


class Shape:
    """Base of the shapes: subclasses set `duration_s` and `peak_users` and implement `users_at`."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[ShapeOption, ...]] = ()
    use_common_options: ClassVar[bool] = False  # -u / -r / -t do not apply: the shape sets users and length
    clock: Callable[[], float] = staticmethod(time.perf_counter)  # tests put a fake clock on the instance

    duration_s: float
    peak_users: int

    def __init__(self) -> None:
        super().__init__()  # Locust's LoadTestShape when installed (it only notes a start time)
        self.phase: str | None = None
        self.ended_early: str | None = None  # why the schedule was cut short (end_now), if it was
        self.start_time = self.clock()

    @classmethod
    def from_options(cls, options: Namespace) -> Shape:
        """Build the shape from parsed options (attribute names are the options' dests)."""
        raise NotImplementedError

    def users_at(self, elapsed_s: float) -> Step | None:
        """(users, spawn rate, phase) at `elapsed_s` seconds into the shape, None once it is over."""
        raise NotImplementedError

    def reset_time(self) -> None:
        """Start the schedule now (Locust calls this when the test starts, and a master again at its first
        spawn): the phase is the first one at once, so a phase follower never sees a gap."""
        self.start_time = self.clock()
        first = self.users_at(0.0)
        self.phase = first[2] if first else None

    def get_run_time(self) -> float:
        return self.clock() - self.start_time

    def end_now(self, reason: str) -> None:
        """Cut the schedule short: the next tick ends the shape (the capacity finder, at the first broken step)."""
        self.ended_early = reason

    def tick(self) -> tuple[int, float] | None:
        step = None if self.ended_early else self.users_at(self.get_run_time())
        if step is None:
            self.phase = None
            return None
        users, spawn_rate, self.phase = step
        return users, spawn_rate

    def summary(self) -> str:
        return f"load shape {self.name}: {self.duration_s:g} s, up to {plural(self.peak_users)}"
