"""`spike`: a steady baseline, one sudden spike, then the baseline again to watch the recovery.
Phases: "baseline", "spike", "recovery"."""

from __future__ import annotations

from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, require, resolve_spawn_rate


class SpikeShape(Shape):
    """`baseline_users` for `before_s`, `spike_users` for `spike_s`, `baseline_users` for `recovery_s`."""

    name = "spike"
    options = (
        ShapeOption("--spike-baseline-users", int, 5, "spike: users before and after the spike"),
        ShapeOption("--spike-users", int, 50, "spike: users during the spike (in total, baseline included)"),
        ShapeOption("--spike-after", float, 60.0, "spike: seconds of baseline before the spike"),
        ShapeOption("--spike-duration", float, 30.0, "spike: seconds the spike lasts"),
        ShapeOption("--spike-recovery", float, 60.0, "spike: seconds of baseline after the spike"),
    )

    def __init__(self, baseline_users: int, spike_users: int, before_s: float, spike_s: float, recovery_s: float,
                 spawn_rate: float = 0.0) -> None:
        check_users(baseline_users, "--spike-baseline-users", minimum=0)
        require(spike_users > baseline_users,
                f"--spike-users ({spike_users}) must be above --spike-baseline-users ({baseline_users})")
        check_seconds(before_s, "--spike-after")
        check_seconds(spike_s, "--spike-duration")
        check_seconds(recovery_s, "--spike-recovery")
        super().__init__()
        self.baseline_users, self.peak_users = baseline_users, spike_users
        self.spike_start_s, self.spike_end_s = before_s, before_s + spike_s
        self.duration_s = before_s + spike_s + recovery_s
        self.spawn_rate = resolve_spawn_rate(spawn_rate, max(baseline_users, spike_users - baseline_users))

    @classmethod
    def from_options(cls, options: Namespace) -> SpikeShape:
        return cls(options.spike_baseline_users, options.spike_users, options.spike_after, options.spike_duration,
                   options.spike_recovery, options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        if elapsed_s < self.spike_start_s:
            return self.baseline_users, self.spawn_rate, "baseline"
        if elapsed_s < self.spike_end_s:
            return self.peak_users, self.spawn_rate, "spike"
        return self.baseline_users, self.spawn_rate, "recovery"
