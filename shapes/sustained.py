"""`sustained` (alias `soak`): the same number of users for a long time, to find leaks and drift.
Phase: "sustained (10 users)"."""

from __future__ import annotations

from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, plural, resolve_spawn_rate


class SustainedShape(Shape):
    """`users` users for `duration_s` seconds."""

    name = "sustained"
    aliases = ("soak",)
    options = (
        ShapeOption("--sustained-users", int, 10, "sustained/soak: users for the whole run"),
        ShapeOption("--sustained-duration", float, 600.0, "sustained/soak: seconds the run lasts"),
    )

    def __init__(self, users: int, duration_s: float, spawn_rate: float = 0.0) -> None:
        check_users(users, "--sustained-users")
        check_seconds(duration_s, "--sustained-duration")
        super().__init__()
        self.peak_users, self.duration_s = users, duration_s
        self.spawn_rate = resolve_spawn_rate(spawn_rate, users)

    @classmethod
    def from_options(cls, options: Namespace) -> SustainedShape:
        return cls(options.sustained_users, options.sustained_duration, options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        return self.peak_users, self.spawn_rate, f"sustained ({plural(self.peak_users)})"
