"""`burst`: sudden bursts of users, each started within a ramp-up of milliseconds (spawn rate = burst
size / ramp-up), held, then a rest with only the base users (0 by default) before the next burst.
Phases: "burst 1", "rest 1", "burst 2", ... (no rest after the last burst)."""

from __future__ import annotations

from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, require, segment


class BurstShape(Shape):
    """`bursts` bursts of `burst_users` on top of `base_users`, `hold_s` each, `rest_s` apart."""

    name = "burst"
    options = (
        ShapeOption("--burst-users", int, 20, "burst: users added by each burst (the burst size)"),
        ShapeOption("--bursts", int, 3, "burst: number of bursts"),
        ShapeOption("--burst-ramp-up-ms", float, 1000.0,
                    "burst: milliseconds to start a burst's users (spawn rate = burst size / ramp-up)"),
        ShapeOption("--burst-hold", float, 30.0, "burst: seconds each burst lasts, ramp-up included"),
        ShapeOption("--burst-rest", float, 30.0, "burst: seconds of rest between bursts"),
        ShapeOption("--burst-base-users", int, 0, "burst: users kept during the rests (and under the bursts)"),
    )

    def __init__(self, burst_users: int, bursts: int, ramp_up_ms: float, hold_s: float, rest_s: float,
                 base_users: int = 0) -> None:
        check_users(burst_users, "--burst-users")
        check_users(bursts, "--bursts")
        check_seconds(ramp_up_ms, "--burst-ramp-up-ms", unit="milliseconds")
        check_seconds(hold_s, "--burst-hold")
        require(ramp_up_ms / 1000 <= hold_s,
                f"--burst-ramp-up-ms ({ramp_up_ms:g} ms) must not be longer than --burst-hold ({hold_s:g} s)")
        if bursts > 1:
            check_seconds(rest_s, "--burst-rest")
        check_users(base_users, "--burst-base-users", minimum=0)
        super().__init__()
        self.burst_users, self.bursts, self.base_users = burst_users, bursts, base_users
        self.hold_s, self.rest_s = hold_s, rest_s if bursts > 1 else 0.0
        self.spawn_rate = burst_users / (ramp_up_ms / 1000)
        self.duration_s = bursts * hold_s + (bursts - 1) * self.rest_s
        self.peak_users = base_users + burst_users

    @classmethod
    def from_options(cls, options: Namespace) -> BurstShape:
        return cls(options.burst_users, options.bursts, options.burst_ramp_up_ms, options.burst_hold,
                   options.burst_rest, options.burst_base_users)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index, into = segment(elapsed_s, self.hold_s + self.rest_s, self.bursts)
        if into < self.hold_s:
            return self.peak_users, self.spawn_rate, f"burst {index + 1}"
        return self.base_users, self.spawn_rate, f"rest {index + 1}"
