"""The load shapes with a fake clock: users and phase names over time follow the parameters, every shape
ends by itself, callcenter follows Little's law, and bad options give one clear ShapeError line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from orchestrator.local_stack import REPO_ROOT
from shapes import SHAPES, ShapeError, add_shape_options, default_options, shape_from_options
from shapes.base import MAX_AUTO_SPAWN_RATE, Shape
from shapes.callcenter import MEDICAL_DAY_CALLS_PER_HOUR, CallCenterShape, concurrent_calls
from shapes.options import merged_options


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(shape: Shape, step_s: float = 0.5) -> tuple[list[tuple[float, int, float, str]], float]:
    """Tick the shape every step_s of fake time as Locust would: [(t, users, spawn rate, phase)], end time."""
    clock = FakeClock()
    shape.clock = clock
    assert shape.phase is None  # not started
    shape.reset_time()
    assert shape.phase == shape.users_at(0.0)[2]  # started: in the first phase before the first tick
    ticks = []
    for i in range(int(shape.duration_s / step_s) + 10):  # bounded: a shape that never ends fails below
        clock.now = 1000.0 + i * step_s
        result = shape.tick()
        if result is None:
            assert shape.phase is None
            return ticks, i * step_s
        users, rate = result
        ticks.append((i * step_s, users, rate, shape.phase))
    raise AssertionError(f"{type(shape).__name__} did not end after {shape.duration_s} s")


def phases(ticks) -> list[tuple[str, int, float]]:
    """Consecutive ticks with the same phase: (phase, users, start time)."""
    out: list[tuple[str, int, float]] = []
    for t, users, _rate, phase in ticks:
        if not out or out[-1][0] != phase:
            out.append((phase, users, t))
    return out


def build(**values) -> Shape:
    shape = shape_from_options(default_options(**values))
    assert shape is not None
    return shape


def test_ramp_steps_up_to_max_users_then_ends():
    shape = build(shape="ramp", ramp_start_users=10, ramp_increment=15, ramp_step_duration=30, ramp_max_users=50)
    ticks, ended = run(shape)
    assert phases(ticks) == [("step 1 (10 users)", 10, 0.0), ("step 2 (25 users)", 25, 30.0),
                             ("step 3 (40 users)", 40, 60.0), ("step 4 (50 users)", 50, 90.0)]
    assert ended == shape.duration_s == 120.0
    assert {rate for *_, rate, _ in ticks} == {15.0}  # each change (0->10, +15, +10) within about a second


def test_step_is_ramp_and_one_user_is_singular():
    shape = build(shape="step", ramp_start_users=1, ramp_increment=1, ramp_step_duration=2, ramp_max_users=2)
    assert type(shape) is type(build(shape="ramp"))
    assert [p for p, _, _ in phases(run(shape)[0])] == ["step 1 (1 user)", "step 2 (2 users)"]


def test_square_wave_alternates_peak_and_valley():
    shape = build(shape="wave", wave_peak_users=20, wave_valley_users=5, waves=3, wave_duration=60)
    ticks, ended = run(shape)
    assert phases(ticks) == [("wave 1 peak", 20, 0.0), ("wave 1 valley", 5, 30.0), ("wave 2 peak", 20, 60.0),
                             ("wave 2 valley", 5, 90.0), ("wave 3 peak", 20, 120.0), ("wave 3 valley", 5, 150.0)]
    assert ended == 180.0
    assert ticks[0][2] == 20.0  # 0 -> 20 within a second


def test_sine_wave_stays_between_valley_and_peak_and_names_halves():
    shape = build(shape="wave", wave_peak_users=30, wave_valley_users=10, waves=2, wave_duration=40, wave_form="sine")
    ticks, ended = run(shape, step_s=1.0)
    users = {t: u for t, u, _, _ in ticks}
    assert (users[0.0], users[10.0], users[30.0], users[40.0], users[50.0]) == (20, 30, 10, 20, 30)
    assert min(users.values()) == 10 and max(users.values()) == 30
    assert all(abs(users[t + 1] - users[t]) <= 2 for t in range(39))  # smooth: 2*pi*10/40 = 1.6 users/s at most
    assert [p for p, _, _ in phases(ticks)] == ["wave 1 peak", "wave 1 valley", "wave 2 peak", "wave 2 valley"]
    assert ended == 80.0


def test_burst_spawns_each_burst_within_its_ramp_up_and_rests_at_base():
    shape = build(shape="burst", burst_users=50, bursts=3, burst_ramp_up_ms=500, burst_hold=10, burst_rest=20,
                  burst_base_users=2)
    ticks, ended = run(shape)
    assert phases(ticks) == [("burst 1", 52, 0.0), ("rest 1", 2, 10.0), ("burst 2", 52, 30.0), ("rest 2", 2, 40.0),
                             ("burst 3", 52, 60.0)]
    assert ended == 70.0  # no rest after the last burst
    assert {rate for *_, rate, _ in ticks} == {100.0}  # 50 users / 0.5 s


def test_spike_has_baseline_spike_and_recovery():
    shape = build(shape="spike", spike_baseline_users=5, spike_users=40, spike_after=20, spike_duration=10,
                  spike_recovery=30)
    ticks, ended = run(shape)
    assert phases(ticks) == [("baseline", 5, 0.0), ("spike", 40, 20.0), ("recovery", 5, 30.0)]
    assert ended == 60.0
    assert ticks[0][2] == 35.0  # the spike arrives within a second


def test_sustained_and_soak_hold_constant_users():
    for name in ("sustained", "soak"):
        shape = build(shape=name, sustained_users=12, sustained_duration=90, shape_spawn_rate=3)
        ticks, ended = run(shape)
        assert phases(ticks) == [("sustained (12 users)", 12, 0.0)]
        assert {rate for *_, rate, _ in ticks} == {3.0}  # --shape-spawn-rate overrides the automatic rate
        assert ended == 90.0


def test_batches_place_every_call_in_batches_that_start_afresh():
    shape = build(shape="batches", batch_calls=25, batch_size=10, batch_hold=12, batch_gap=1)
    ticks, ended = run(shape)
    assert phases(ticks) == [("batch 1 (10 calls)", 10, 0.0), ("gap 1", 0, 12.0), ("batch 2 (10 calls)", 10, 13.0),
                             ("gap 2", 0, 25.0), ("batch 3 (5 calls)", 5, 26.0)]
    assert ended == 38.0 and shape.peak_users == 10
    assert ticks[0][2] == 10.0  # a batch starts within a second
    single = build(shape="batches", batch_calls=3, batch_size=10, batch_hold=9)
    assert phases(run(single)[0]) == [("batch 1 (3 calls)", 3, 0.0)] and single.peak_users == 3


def test_stability_alternates_base_and_peak_and_cuts_the_last_phase_at_the_total():
    shape = build(shape="stability", stability_base_users=4, stability_peak_users=16, stability_minutes=1.25,
                  stability_phase=20)
    ticks, ended = run(shape)
    assert phases(ticks) == [("base 1", 4, 0.0), ("peak 1", 16, 20.0), ("base 2", 4, 40.0), ("peak 2", 16, 60.0)]
    assert ended == 75.0


def test_callcenter_default_day_follows_littles_law_per_hour():
    shape = build(shape="callcenter", callcenter_handle_time=300, callcenter_duration=240)
    ticks, ended = run(shape)
    rows = phases(ticks)
    assert len(rows) == 24 and ended == 240.0
    for hour, (phase, users, start) in enumerate(rows):
        calls = MEDICAL_DAY_CALLS_PER_HOUR[hour]
        assert phase == f"hour {hour:02d} ({calls} calls/h)"
        assert users == int(calls * 300 / 3600 + 0.5)  # concurrent = calls/s x handle time, to the nearest call
        assert start == hour * 10.0
    assert rows[9] == ("hour 09 (420 calls/h)", 35, 90.0)  # the morning peak: 420/3600 x 300 = 35


def test_callcenter_littles_law_exactly():
    assert concurrent_calls(120, 180) == pytest.approx(6.0)  # 120 calls/h = 1/30 per s, x 180 s
    profile = [0.0] * 24
    profile[0], profile[1] = 120.0, 90.0
    shape = CallCenterShape(profile, handle_time_s=180, duration_s=20, hours=(0, 2))
    assert phases(run(shape)[0]) == [("hour 00 (120 calls/h)", 6, 0.0), ("hour 01 (90 calls/h)", 5, 10.0)]  # 4.5 -> 5


def test_callcenter_scales_to_the_peak_and_runs_only_the_chosen_hours():
    shape = build(shape="callcenter", calls_per_hour_peak=840, callcenter_hours="8-12", callcenter_handle_time=300,
                  callcenter_duration=40)
    ticks, ended = run(shape)
    assert phases(ticks) == [("hour 08 (760 calls/h)", 63, 0.0), ("hour 09 (840 calls/h)", 70, 10.0),
                             ("hour 10 (720 calls/h)", 60, 20.0), ("hour 11 (600 calls/h)", 50, 30.0)]
    assert ended == 40.0
    assert shape.peak_users == 70 and "busiest hour 09: 840 calls/h" in shape.summary()
    assert ticks[0][2] == 63.0  # the largest change between hours, 0 -> 63, within a second


def test_callcenter_profile_from_a_comma_list():
    profile = ",".join(["0"] * 9 + ["60", "180", "120"] + ["0"] * 12)
    shape = build(shape="callcenter", callcenter_profile=profile, callcenter_hours="9-12", callcenter_handle_time=60,
                  callcenter_duration=12)
    assert [(p, u) for p, u, _ in phases(run(shape)[0])] == [
        ("hour 09 (60 calls/h)", 1), ("hour 10 (180 calls/h)", 3), ("hour 11 (120 calls/h)", 2)]


def test_automatic_spawn_rate_is_capped():
    shape = build(shape="sustained", sustained_users=500, sustained_duration=10)
    assert shape.users_at(0) == (500, MAX_AUTO_SPAWN_RATE, "sustained (500 users)")


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_builds_from_its_defaults_and_ends_by_itself(name):
    shape = build(shape=name)
    ticks, ended = run(shape, step_s=1.0)
    assert ended == pytest.approx(shape.duration_s, abs=1.0)
    assert max(users for _, users, _, _ in ticks) == shape.peak_users
    assert all(phase for *_, phase in ticks)
    assert shape.users_at(shape.duration_s) is None and shape.users_at(-1.0) == ticks[0][1:]


def test_no_shape():
    assert shape_from_options(default_options()) is None
    assert shape_from_options(default_options(shape="none")) is None


@pytest.mark.parametrize(("values", "message"), [
    ({"shape": "zigzag"}, "--shape must be one of ramp, step, wave"),
    ({"shape": "ramp", "ramp_start_users": -1}, "--ramp-start-users must be at least 1, got -1"),
    ({"shape": "ramp", "ramp_increment": 0}, "--ramp-increment must be at least 1, got 0"),
    ({"shape": "ramp", "ramp_step_duration": 0.0}, "--ramp-step-duration must be a positive number of seconds, got 0"),
    ({"shape": "ramp", "ramp_start_users": 20, "ramp_max_users": 10},
     "--ramp-max-users (10) must not be below --ramp-start-users (20)"),
    ({"shape": "wave", "wave_valley_users": 30, "wave_peak_users": 20},
     "--wave-valley-users (30) must be below --wave-peak-users (20)"),
    ({"shape": "wave", "wave_valley_users": -2}, "--wave-valley-users must be at least 0, got -2"),
    ({"shape": "wave", "waves": 0}, "--waves must be at least 1, got 0"),
    ({"shape": "wave", "wave_duration": float("nan")}, "--wave-duration must be a positive number of seconds"),
    ({"shape": "wave", "wave_form": "triangle"}, "--wave-form must be one of square, sine, got 'triangle'"),
    ({"shape": "burst", "burst_users": 0}, "--burst-users must be at least 1, got 0"),
    ({"shape": "burst", "burst_ramp_up_ms": 0.0}, "--burst-ramp-up-ms must be a positive number of milliseconds"),
    ({"shape": "burst", "burst_ramp_up_ms": 5000.0, "burst_hold": 3.0},
     "--burst-ramp-up-ms (5000 ms) must not be longer than --burst-hold (3 s)"),
    ({"shape": "burst", "burst_rest": 0.0}, "--burst-rest must be a positive number of seconds, got 0"),
    ({"shape": "burst", "burst_base_users": -1}, "--burst-base-users must be at least 0, got -1"),
    ({"shape": "spike", "spike_users": 5, "spike_baseline_users": 5},
     "--spike-users (5) must be above --spike-baseline-users (5)"),
    ({"shape": "spike", "spike_recovery": -10.0}, "--spike-recovery must be a positive number of seconds, got -10"),
    ({"shape": "soak", "sustained_users": 0}, "--sustained-users must be at least 1, got 0"),
    ({"shape": "batches", "batch_calls": 0}, "--batch-calls must be at least 1, got 0"),
    ({"shape": "batches", "batch_size": -2}, "--batch-size must be at least 1, got -2"),
    ({"shape": "batches", "batch_gap": 0.0}, "--batch-gap must be a positive number of seconds, got 0"),
    ({"shape": "sustained", "sustained_duration": 0.0}, "--sustained-duration must be a positive number of seconds"),
    ({"shape": "sustained", "shape_spawn_rate": -1.0}, "--shape-spawn-rate must be 0 (automatic) or a positive number"),
    ({"shape": "stability", "stability_peak_users": 3, "stability_base_users": 5},
     "--stability-peak-users (3) must be above --stability-base-users (5)"),
    ({"shape": "stability", "stability_minutes": 0.0}, "--stability-minutes must be a positive number of minutes"),
    ({"shape": "stability", "stability_minutes": 1.0, "stability_phase": 60.0},
     "--stability-phase (60 s) must be shorter than --stability-minutes (1 min)"),
    ({"shape": "callcenter", "callcenter_profile": "1,2,3"}, "--callcenter-profile needs 24 values"),
    ({"shape": "callcenter", "callcenter_profile": ",".join(["5"] * 23 + ["many"])},
     "--callcenter-profile: 'many' is not a number of calls per hour"),
    ({"shape": "callcenter", "callcenter_profile": ",".join(["5"] * 23 + ["-5"])},
     "--callcenter-profile: calls per hour must be 0 or more, got -5"),
    ({"shape": "callcenter", "callcenter_profile": ",".join(["0"] * 24)}, "--callcenter-profile has no calls"),
    ({"shape": "callcenter", "callcenter_hours": "18-8"}, "--callcenter-hours must be START-END with 0 <= START < END"),
    ({"shape": "callcenter", "callcenter_hours": "morning"}, "--callcenter-hours: expected START-END such as 8-18"),
    ({"shape": "callcenter", "callcenter_handle_time": 0.0}, "--callcenter-handle-time must be a positive number"),
    ({"shape": "callcenter", "callcenter_duration": -1.0}, "--callcenter-duration must be a positive number"),
    ({"shape": "callcenter", "calls_per_hour_peak": -100.0}, "--calls-per-hour-peak must be 0 (the profile as given)"),
    ({"shape": "callcenter", "callcenter_hours": "1-4", "callcenter_handle_time": 60.0},
     "no hour of --callcenter-hours 1-4 has a whole concurrent call"),
])
def test_bad_values_give_one_clear_line(values, message):
    with pytest.raises(ShapeError) as caught:
        shape_from_options(default_options(**values))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


class LocustLikeParser(argparse.ArgumentParser):
    """argparse with Locust's extra add_argument keywords, recorded."""

    def __init__(self) -> None:
        self.extra: dict[str, dict] = {}
        super().__init__(add_help=False, exit_on_error=False)

    def add_argument(self, *args, env_var=None, include_in_web_ui=False, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.extra[action.dest] = {"env_var": env_var, "include_in_web_ui": include_in_web_ui}
        return action


def test_options_have_env_vars_show_in_the_web_ui_and_parse_into_a_shape():
    parser = LocustLikeParser()
    add_shape_options(parser)
    add_shape_options(parser)  # a second locustfile calling it too: no conflict
    assert parser.extra["shape"] == {"env_var": "VOICELOAD_SHAPE", "include_in_web_ui": True}
    assert parser.extra["calls_per_hour_peak"]["env_var"] == "VOICELOAD_CALLS_PER_HOUR_PEAK"
    assert all(extra["include_in_web_ui"] and extra["env_var"] == "VOICELOAD_" + dest.upper()
               for dest, extra in parser.extra.items())
    shape_action = next(a for a in parser._actions if a.dest == "shape")
    assert set(shape_action.choices) == {*SHAPES, "none"} and shape_action.default == "none"
    options = parser.parse_args(["--shape", "wave", "--wave-peak-users", "8", "--wave-valley-users", "2",
                                 "--waves", "1", "--wave-duration", "10"])
    assert phases(run(shape_from_options(options))[0]) == [("wave 1 peak", 8, 0.0), ("wave 1 valley", 2, 5.0)]
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--shape", "zigzag"])


def test_web_form_values_are_converted_or_named_in_the_error():
    options = default_options(shape="none")
    merged = merged_options(options, {"shape": "spike", "spike_users": "12", "spike_after": "2.5", "host": "x"})
    assert (merged.shape, merged.spike_users, merged.spike_after) == ("spike", 12, 2.5)
    assert options.shape == "none"  # a copy
    for form, message in (({"waves": "2.5"}, "--waves must be a whole number, got '2.5'"),
                          ({"wave_duration": "soon"}, "--wave-duration must be a number, got 'soon'"),
                          ({"shape": "zigzag"}, "--shape must be one of"),
                          ({"wave_form": "saw"}, "--wave-form must be one of square, sine, got 'saw'")):
        with pytest.raises(ShapeError, match=message):
            merged_options(options, form)


def test_importing_the_shapes_does_not_import_locust():
    """Locust monkey-patches with gevent on import: the shapes must stay importable in any process."""
    code = "import sys, shapes, shapes.options; print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
