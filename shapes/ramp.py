"""`ramp` (alias `step`): start with some users, add an increment every step until the maximum, hold
each step for the same time (the seed's load test: max batch and increment). Phases: "step 3 (40 users)"."""

from __future__ import annotations

import math
from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, plural, require, resolve_spawn_rate, segment


class RampShape(Shape):
    """Users in equal steps: start, start + increment, ... up to max users, each step for step_duration_s."""

    name = "ramp"
    aliases = ("step",)
    options = (
        ShapeOption("--ramp-start-users", int, 10, "ramp/step: users in the first step"),
        ShapeOption("--ramp-increment", int, 10, "ramp/step: users added at each step"),
        ShapeOption("--ramp-step-duration", float, 60.0, "ramp/step: seconds each step lasts"),
        ShapeOption("--ramp-max-users", int, 50, "ramp/step: users in the last step"),
    )

    def __init__(self, start_users: int, increment: int, step_duration_s: float, max_users: int,
                 spawn_rate: float = 0.0) -> None:
        check_users(start_users, "--ramp-start-users")
        check_users(increment, "--ramp-increment")
        check_seconds(step_duration_s, "--ramp-step-duration")
        require(max_users >= start_users,
                f"--ramp-max-users ({max_users}) must not be below --ramp-start-users ({start_users})")
        super().__init__()
        self.start_users, self.increment, self.max_users = start_users, increment, max_users
        self.step_duration_s = step_duration_s
        self.steps = math.ceil((max_users - start_users) / increment) + 1
        self.duration_s = self.steps * step_duration_s
        self.peak_users = max_users
        self.spawn_rate = resolve_spawn_rate(spawn_rate, max(start_users, min(increment, max_users - start_users)))

    @classmethod
    def from_options(cls, options: Namespace) -> RampShape:
        return cls(options.ramp_start_users, options.ramp_increment, options.ramp_step_duration,
                   options.ramp_max_users, options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index, _ = segment(elapsed_s, self.step_duration_s, self.steps)
        users = min(self.start_users + index * self.increment, self.max_users)
        return users, self.spawn_rate, f"step {index + 1} ({plural(users)})"

