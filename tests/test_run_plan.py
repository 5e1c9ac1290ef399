"""Run plans as data (`scenarios:` in a --config YAML) and open-model arrivals.

Pure parts: the plan's validation (one line naming the key), when each scenario starts, and the arrival
schedule. End to end: a two-scenario plan (the second following the first) against the independent fixture
agent, with both scenarios as phases of report.json; an open-model scenario at 2 calls/s against the
reference target made slow (one LLM slot) keeps offering calls at 2/s and drops those it cannot start,
while the same scenario against the target as it is drops none.
"""

from __future__ import annotations

import random
import statistics

import pytest
import yaml

from orchestrator.groups import GroupPlan, one_after_another, start_offsets, wall_time_s
from orchestrator.run_plan import PlanError, parse_plan, plan_groups_of
from shapes.arrivals import ArrivalSchedule, Stage, arrival_times, schedule_from_json
from tests.conftest import latest_report, run_cli

LENIENT = """
thresholds: {generator_lateness_p99_ms: 60, generator_cpu_percent: 100, generator_cpu_time_fraction: 1}
"""


def plan_error(text: str) -> str:
    with pytest.raises(PlanError) as caught:
        parse_plan(yaml.safe_load(text))
    return str(caught.value)


# -- the plan ------------------------------------------------------------------------------------------


def test_a_plan_becomes_groups_that_start_when_it_says():
    plan = parse_plan(yaml.safe_load("""
scenarios:
  - {name: warmup, users: {TelephonyCaller: 2, BrowserCaller: 1}, duration: 1m}
  - {name: rush, arrivals: {rate: 30, per: m, max_concurrent: 7}, duration: 90s, start_after: warmup}
  - {name: api, users: {ApiUser: 3}, duration: 20, start_after: 10}
  - {name: ramp, shape: {name: ramp, ramp_start_users: 2, ramp_increment: 2, ramp_max_users: 4, ramp_step_duration: 5}}
"""))
    warmup, rush, api, ramp = plan_groups_of(plan, default_spawn_rate=2.0)
    assert warmup.counts["voice_users"] == 2 and warmup.counts["browser_users"] == 1 and warmup.run_time_s == 60
    assert warmup.user_classes == ("TelephonyCaller", "BrowserCaller") and warmup.as_phase
    assert rush.arrivals["rate"] == 30 and rush.arrivals["per"] == "m" and rush.locust_users == 1 and rush.users == 7
    assert ramp.shape["shape"] == "ramp" and ramp.run_time_s == 10 and ramp.users == 4
    assert start_offsets([warmup, rush, api, ramp]) == {"warmup": 0.0, "rush": 60.0, "api": 10.0, "ramp": 0.0}
    assert wall_time_s([warmup, rush, api, ramp]) == 150


def test_a_suite_runs_its_groups_one_after_another_unless_parallel():
    plans = [GroupPlan("api", {"api_users": 1}, 15), GroupPlan("websocket", {"voice_users": 1}, 40)]
    assert wall_time_s(plans) == 40
    assert [p.start_after for p in one_after_another(plans)] == [None, "api"]
    assert wall_time_s(one_after_another(plans)) == 55


@pytest.mark.parametrize("text, expected", [
    ("scenarios: [{name: a, userz: {TelephonyCaller: 1}, duration: 5s}]", "scenarios[0] (a).userz: unknown key"),
    ("scenarios: [{name: a, arrivals: {rate: 2, pre: s}, duration: 5s}]", "scenarios[0] (a).arrivals.pre: unknown key"),
    ("scenarios: [{name: a, users: {Telephony: 1}, duration: 5s}]", "unknown user class 'Telephony'"),
    ("scenarios: [{name: a, users: {TelephonyCaller: 1}}]", "duration is required"),
    ("scenarios: [{name: a, users: {TelephonyCaller: 1}, shape: {name: ramp}, duration: 5s}]", "exactly one of"),
    ("scenarios: [{name: a, users: {TelephonyCaller: 1}, duration: 5s, start_after: b}]", "'b' names no scenario"),
    ("scenarios: [{name: a, users: {ApiUser: 1}, duration: 5s, start_after: b},"
     " {name: b, users: {ApiUser: 1}, duration: 5s, start_after: a}]", "round in a circle"),
    ("scenarios: [{name: a, users: {ApiUser: 1}, duration: 5s}, {name: a, users: {ApiUser: 1}, duration: 5s}]", "two scenarios"),
    ("scenarios: [{name: a, shape: {name: ramp, ramp_max_users: -3}}]", "ramp"),
    ("scenarios: [{name: '../x', users: {ApiUser: 1}, duration: 5s}]", "letters, digits"),
    ("scenarios: [{name: a, users: {ApiUser: 1}, duration: soon}]", "invalid duration"),
])
def test_a_bad_plan_is_one_line_naming_the_key(text, expected):
    message = plan_error(text)
    assert expected in message and "\n" not in message


# -- the arrival schedule -----------------------------------------------------------------------------------


def test_arrivals_come_at_the_rate_at_random_moments():
    times = arrival_times(ArrivalSchedule(rate=2.0, duration_s=600.0), random.Random(7))
    assert len(times) == 1200 and times == sorted(times) and 0 <= times[0] and times[-1] <= 600
    gaps = [b - a for a, b in zip(times, times[1:])]
    # exponential gaps (a Poisson process) have a coefficient of variation of 1; evenly spaced calls have 0
    assert 0.85 < statistics.pstdev(gaps) / statistics.mean(gaps) < 1.15
    assert times != arrival_times(ArrivalSchedule(rate=2.0, duration_s=600.0), random.Random(8))
    assert times == arrival_times(ArrivalSchedule(rate=2.0, duration_s=600.0), random.Random(7))


def test_a_ramping_rate_places_more_calls_where_the_rate_is_higher():
    schedule = ArrivalSchedule(rate=0.0, duration_s=120.0, stages=(Stage(60.0, 4.0),))  # 0 -> 4/s, then 4/s
    times = arrival_times(schedule, random.Random(1))
    assert len(times) == 120 + 240
    first, second = sum(t < 30 for t in times), sum(30 <= t < 60 for t in times)
    assert first < second / 2  # the rate in the first half of the ramp is a third of the second's on average
    assert ArrivalSchedule(rate=360, duration_s=3600, per="h").expected_calls() == pytest.approx(360)


# -- end to end -----------------------------------------------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "plan.yaml"
    path.write_text(LENIENT + text)
    return path


def test_a_plan_with_an_unknown_key_exits_2_before_anything_starts(tmp_path):
    config = write(tmp_path, "scenarios: [{name: a, users: {TelephonyCaller: 1}, duratoin: 5s}]\n")
    result = run_cli(["--config", str(config), "--results-dir", str(tmp_path / "results")], timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "scenarios[0] (a).duratoin: unknown key" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.long
def test_two_scenarios_one_after_the_other_are_two_phases(tmp_path, start_agent):
    agent = start_agent("healthy")
    config = write(tmp_path, """
scenarios:
  - {name: warmup, users: {TelephonyCaller: 2}, duration: 8s}
  - {name: rush, arrivals: {rate: 1, per: s, max_concurrent: 10}, duration: 8s, start_after: warmup}
""")
    result = run_cli(["--host", agent.url, "--config", str(config), "--results-dir", str(tmp_path)], timeout=150)
    output = result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert result.returncode == 0, output[-3000:]
    warmup, rush = report["phases"]
    assert (warmup["name"], rush["name"]) == ("warmup", "rush")
    assert rush["start_s"] >= warmup["end_s"] - 1.0  # one after the other (start times are whole seconds)
    assert warmup["calls_started"] >= 2 and rush["calls_started"] >= 5
    assert report["summary"]["calls_arrived"] == 8 and report["summary"]["calls_dropped"] == 0
    assert [g["name"] for g in report["run"]["groups"]] == ["warmup", "rush"]
    assert report["run"]["suite"] is None


OPEN_MODEL = """
scenarios:
  - {name: open, arrivals: {rate: 2, per: s, max_concurrent: 30}, duration: 20s}
"""


@pytest.mark.long
@pytest.mark.parametrize("llm_slots, drops", [("1", True), ("16", False)])
def test_an_open_model_keeps_its_rate_and_drops_what_a_slow_agent_cannot_take(tmp_path, start_stack, llm_slots, drops):
    stack = start_stack("--llm-slots", llm_slots)
    config = write(tmp_path, OPEN_MODEL)
    result = run_cli(["--host", stack.base_url, "--config", str(config), "--results-dir", str(tmp_path)], timeout=150)
    report = latest_report(tmp_path)
    summary = report["summary"]
    assert abs(summary["calls_arrived"] / 20 - 2.0) <= 0.2, summary  # offered at 2/s whatever the agent's speed
    if drops:
        assert summary["calls_dropped"] > 0 and result.returncode == 1
        assert "not placed" in result.stdout
    else:
        assert summary["calls_dropped"] == 0, summary
        assert summary["calls_started"] == summary["calls_arrived"]


@pytest.mark.parametrize("preset", [["--test-suite", "standard"], ["--test-suite", "quick", "--parallel"],
                                    ["--test-type", "burst_pattern"], ["--find-capacity", "--capacity-max", "20"]])
def test_every_preset_is_a_plan_that_a_config_file_can_hold(tmp_path, preset):
    """A suite, a test type and the capacity finder each make a run plan: printed by --print-config as
    `scenarios:`, the same plan from a --config file runs the same groups."""
    import json

    printed = run_cli([*preset, "--print-config"], timeout=60)
    assert printed.returncode == 0, printed.stderr
    shown = json.loads(printed.stdout)
    config = tmp_path / "plan.yaml"
    config.write_text(yaml.safe_dump({"scenarios": shown["scenarios"]}))
    again = run_cli(["--config", str(config), "--print-config"], timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["run_plan"]["groups"] == shown["run_plan"]["groups"]


def test_the_callcenter_day_as_an_open_model_offers_each_hours_calls_in_its_slot():
    """`arrivals: {callcenter: ...}`: the callcenter shape's day, compressed, as arrivals; each hour's calls (380,
    420 and 360 at 08-10 in the medical profile) arrive within its third of the duration."""
    import json

    plan = parse_plan(yaml.safe_load("scenarios: [{name: day, arrivals: {callcenter: {callcenter_hours: 8-11, "
                                     "callcenter_duration: 90}, max_concurrent: 80}}]"))
    (day,) = plan_groups_of(plan, default_spawn_rate=2.0)
    assert day.run_time_s == 90 and day.users == 80
    schedule, cap, seed = schedule_from_json(json.dumps(day.arrivals))
    times = arrival_times(schedule, random.Random(seed))
    per_hour = [sum(start <= t < start + 30 for t in times) for start in (0, 30, 60)]
    assert sum(per_hour) == 380 + 420 + 360
    assert per_hour[1] > per_hour[0] > per_hour[2]
    assert "callcenter" in plan_error("scenarios: [{name: d, arrivals: {rate: 2, callcenter: {}}, duration: 5s}]")
