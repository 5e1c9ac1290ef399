"""`stability`: base and peak load taking turns over a total duration in minutes, to see whether the
system settles back after each peak. Phases: "base 1", "peak 1", "base 2", ... (the last one may be cut
short by the total duration)."""

from __future__ import annotations

import math
from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, require, resolve_spawn_rate, segment


class StabilityShape(Shape):
    """Alternating phases of `phase_s`: `base_users`, then `peak_users`, ... for `total_minutes`."""

    name = "stability"
    options = (
        ShapeOption("--stability-base-users", int, 5, "stability: users in the base phases"),
        ShapeOption("--stability-peak-users", int, 20, "stability: users in the peak phases"),
        ShapeOption("--stability-minutes", float, 30.0, "stability: total duration in minutes"),
        ShapeOption("--stability-phase", float, 300.0, "stability: seconds of each base or peak phase"),
    )

    def __init__(self, base_users: int, peak_users: int, total_minutes: float, phase_s: float,
                 spawn_rate: float = 0.0) -> None:
        check_users(base_users, "--stability-base-users", minimum=0)
        require(peak_users > base_users,
                f"--stability-peak-users ({peak_users}) must be above --stability-base-users ({base_users})")
        check_seconds(total_minutes, "--stability-minutes", unit="minutes")
        check_seconds(phase_s, "--stability-phase")
        require(phase_s < total_minutes * 60, f"--stability-phase ({phase_s:g} s) must be shorter than "
                f"--stability-minutes ({total_minutes:g} min), or no peak phase would run")
        super().__init__()
        self.base_users, self.peak_users, self.phase_s = base_users, peak_users, phase_s
        self.duration_s = total_minutes * 60
        self.phases = math.ceil(self.duration_s / phase_s)
        self.spawn_rate = resolve_spawn_rate(spawn_rate, max(base_users, peak_users - base_users))

    @classmethod
    def from_options(cls, options: Namespace) -> StabilityShape:
        return cls(options.stability_base_users, options.stability_peak_users, options.stability_minutes,
                   options.stability_phase, options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index, _ = segment(elapsed_s, self.phase_s, self.phases)
        if index % 2 == 0:
            return self.base_users, self.spawn_rate, f"base {index // 2 + 1}"
        return self.peak_users, self.spawn_rate, f"peak {index // 2 + 1}"
