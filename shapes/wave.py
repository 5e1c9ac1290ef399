"""`wave`: load that rises and falls between a peak and a valley, several times. Each wave spends its
first half above the middle ("wave 2 peak") and its second half below it ("wave 2 valley"): as two flat
steps (`--wave-form square`, the default) or as a sine through the middle (`--wave-form sine`)."""

from __future__ import annotations

import math
from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, require, resolve_spawn_rate, round_users, segment

WAVE_FORMS = ("square", "sine")


class WaveShape(Shape):
    """`waves` waves of `wave_duration_s` each between `valley_users` and `peak_users`."""

    name = "wave"
    options = (
        ShapeOption("--wave-peak-users", int, 20, "wave: users at the top of each wave"),
        ShapeOption("--wave-valley-users", int, 5, "wave: users at the bottom of each wave"),
        ShapeOption("--waves", int, 3, "wave: number of waves"),
        ShapeOption("--wave-duration", float, 120.0, "wave: seconds of one wave (its peak half and its valley half)"),
        ShapeOption("--wave-form", str, "square", "wave: square (flat peak and valley steps) or sine", WAVE_FORMS),
    )

    def __init__(self, peak_users: int, valley_users: int, waves: int, wave_duration_s: float, form: str = "square",
                 spawn_rate: float = 0.0) -> None:
        check_users(peak_users, "--wave-peak-users")
        check_users(valley_users, "--wave-valley-users", minimum=0)
        require(valley_users < peak_users,
                f"--wave-valley-users ({valley_users}) must be below --wave-peak-users ({peak_users})")
        check_users(waves, "--waves")
        check_seconds(wave_duration_s, "--wave-duration")
        require(form in WAVE_FORMS, f"--wave-form must be one of {', '.join(WAVE_FORMS)}, got {form!r}")
        super().__init__()
        self.peak_users, self.valley_users, self.waves, self.form = peak_users, valley_users, waves, form
        self.wave_duration_s = wave_duration_s
        self.duration_s = waves * wave_duration_s
        if form == "square":
            largest_change = peak_users  # from 0 to the first peak, then peak <-> valley
        else:  # from 0 to the middle, then at most the sine's steepest slope per second
            amplitude = (peak_users - valley_users) / 2
            largest_change = max(valley_users + amplitude, 2 * math.pi * amplitude / wave_duration_s)
        self.spawn_rate = resolve_spawn_rate(spawn_rate, largest_change)

    @classmethod
    def from_options(cls, options: Namespace) -> WaveShape:
        return cls(options.wave_peak_users, options.wave_valley_users, options.waves, options.wave_duration,
                   options.wave_form, options.shape_spawn_rate)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index, into = segment(elapsed_s, self.wave_duration_s, self.waves)
        upper_half = into < self.wave_duration_s / 2
        if self.form == "square":
            users = self.peak_users if upper_half else self.valley_users
        else:
            middle = (self.peak_users + self.valley_users) / 2
            amplitude = (self.peak_users - self.valley_users) / 2
            users = round_users(middle + amplitude * math.sin(2 * math.pi * into / self.wave_duration_s))
        return users, self.spawn_rate, f"wave {index + 1} {'peak' if upper_half else 'valley'}"
