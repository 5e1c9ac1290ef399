"""--find-capacity: the largest level that held every SLO and the floor, and the metric that broke first."""

from __future__ import annotations

import pytest

from pathlib import Path

from orchestrator.capacity import capacity_line, find_capacity
from reporting.html_report import render_html
from tests.conftest import latest_report, run_cli

pytestmark = pytest.mark.long  # started early: see tests/conftest.py


def phase(users: int, success: float | None, p95: float | None, broken: list[str] = ()) -> dict:
    return {"name": f"step ({users} users)", "users": users, "success_rate": success, "voice_loop_p95": p95,
            "slo_broken": [{"metric": m, "stat": "p95", "observed": 900.0, "target": 700.0} for m in broken]}


def test_the_knee_is_the_first_step_that_broke():
    capacity = find_capacity([phase(5, 100.0, 500.0), phase(10, 99.0, 650.0), phase(15, 95.0, 900.0, ["voice_loop"]),
                              phase(20, 70.0, 1500.0, ["voice_loop", "stt_final"])])
    assert capacity["capacity_calls"] == 10
    assert capacity["knee"]["calls"] == 15 and capacity["knee"]["first_broken"] == "voice_loop"
    assert [s["held"] for s in capacity["steps"]] == [True, True, False, False]
    assert "at 15 calls voice_loop p95 900.0 vs 700.0 broke first" in capacity_line(capacity)


def test_the_success_floor_breaks_a_step_too_and_later_good_steps_do_not_count():
    capacity = find_capacity([phase(5, 100.0, 500.0), phase(10, 75.0, 600.0), phase(15, 100.0, 600.0)])
    assert capacity["capacity_calls"] == 5 and capacity["knee"]["first_broken"] == "success_rate"
    assert find_capacity([phase(5, 100.0, 500.0)])["knee"] is None


def test_find_capacity_against_a_target_with_one_llm_slot(start_stack, tmp_path):
    # one LLM slot, held 0.6 s per reply: one call holds, queueing for the slot breaks voice_loop as calls grow
    stack = start_stack("--llm-slots", "1", "--latency-mode", "fixed", "--llm-ttft-ms", "100")
    result = run_cli(["--host", stack.base_url, "--find-capacity", "--capacity-start", "1", "--capacity-step", "3",
                      "--capacity-max", "7", "--capacity-step-duration", "9", "--results-dir", str(tmp_path)], timeout=180)
    assert result.returncode in (0, 1, 4), result.stdout + result.stderr
    report = latest_report(tmp_path)
    capacity = report["capacity"]
    # it stops at the first step that breaks: the step of 7 calls never starts
    assert [s["calls"] for s in capacity["steps"]] == [1, 4] and capacity["stopped_at_knee"] is True
    assert [p["name"] for p in report["phases"]] == ["step 1 (1 user)", "step 2 (4 users)"]
    assert "the run stopped there (--capacity-full runs every step)" in result.stdout
    assert capacity["steps"][0]["held"] and capacity["capacity_calls"] >= 1
    assert capacity["knee"] is not None and capacity["knee"]["first_broken"] == "voice_loop", capacity
    assert "capacity:" in result.stdout and "Capacity:" in render_html(report)


def test_capacity_full_runs_every_step_and_the_default_stops_at_the_knee():
    """The Locust option that ends the shape at a broken step is set unless --capacity-full."""
    import run_load_tests

    def command(*extra: str) -> list[str]:
        args = run_load_tests.build_parser().parse_args(["--find-capacity", *extra])
        settings = run_load_tests.resolve_settings(args, run_load_tests.SUITES["quick"])
        plan = run_load_tests.run_groups_of(run_load_tests.plan_run(args, settings, run_load_tests.SUITES["quick"]), settings)[0]
        return run_load_tests.group_job(0, plan, Path("/tmp/x"), "http://127.0.0.1:1", args, settings,
                                        run_load_tests.SUITES["quick"], []).command

    assert "--stop-at-broken-phase" in command()
    assert "--stop-at-broken-phase" not in command("--capacity-full")
