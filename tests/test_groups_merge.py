"""Groups of a run: which run, and how their exact samples and files merge into one report."""

from __future__ import annotations

import json
import random

from config import load_settings
from metrics.recorder import MetricsRecorder
from orchestrator.groups import one_after_another, plan_groups, wall_time_s
from orchestrator.merge import SAMPLES_FILE, GroupOutcome, join_group_files, merge_groups, merge_timelines
from orchestrator.suites import BACKEND_KINDS, SUITES
from reporting.report import metric_summaries


def quick_counts(backend: int, integration: int = 0) -> dict[str, int]:
    return {**SUITES["quick"].split(None), **{kind: backend for kind in BACKEND_KINDS}, "integration_users": integration}


def test_plan_runs_every_group_with_users_in_order_with_the_suites_durations():
    plans = plan_groups(SUITES["quick"], quick_counts(1, 4), None, None)
    assert [p.name for p in plans] == ["api", "websocket", "backend", "integration"]
    assert [p.run_time_s for p in plans] == [15, 40, 20, 30]
    assert plans[1].counts["voice_users"] == 3 and plans[1].counts["api_users"] == 0 and plans[1].counts["redis_users"] == 0
    assert plans[2].users == 4 and plans[3].counts == {**{k: 0 for k in plans[3].counts}, "integration_users": 4}
    assert wall_time_s(one_after_another(plans)) == 105 and wall_time_s(plans) == 40


def test_plan_leaves_out_empty_groups_and_honours_one_group_and_run_time():
    assert [p.name for p in plan_groups(SUITES["quick"], quick_counts(0), None, None)] == ["api", "websocket"]
    only = plan_groups(SUITES["quick"], quick_counts(1), "backend", 7)
    assert [(p.name, p.run_time_s, p.users) for p in only] == [("backend", 7, 4)]
    assert plan_groups(SUITES["quick"], quick_counts(0), "backend", None) == []


def test_timelines_add_load_and_keep_the_worst_voice_loop_per_bin():
    merged = merge_timelines([
        (0.0, [{"t_s": 5.0, "users": 2, "rps": 3.0, "failures_per_s": 0.0}, {"t_s": 10.0, "users": 2, "rps": 4.0, "failures_per_s": 1.0}]),
        (5.2, [{"t_s": 5.0, "users": 5, "rps": 10.0, "failures_per_s": 0.5, "voice_loop_p95": 600.0}]),
        (4.9, [{"t_s": 5.0, "users": 1, "rps": 1.0, "failures_per_s": 0.0, "voice_loop_p95": 650.0}]),
    ])
    assert merged == [{"t_s": 5.0, "users": 2, "rps": 3.0, "failures_per_s": 0.0},
                      {"t_s": 10.0, "users": 8, "rps": 15.0, "failures_per_s": 1.5, "voice_loop_p95": 650.0}]


def _group_files(run_dir, name, values, started):
    recorder = MetricsRecorder()
    for value in values:
        recorder.record("voice_loop" if name == "websocket" else "llm_ttft", value)
        recorder.record_request("voice" if name == "websocket" else "openai", "x", value, failed=value > 900)
    if name == "websocket":  # callers: their calls ended, a tenth failed; the backend group places none
        recorder.count("calls_started", len(values))
        recorder.count("calls_completed", len(values) - len(values) // 10)
        recorder.count("calls_failed", len(values) // 10)
    group_dir = run_dir / name
    group_dir.mkdir(parents=True)
    run = {"started_at": started, "ended_at": started.replace(":00+", ":20+"), "duration_s": 20.0, "users": 3, "workers": 0,
           "interrupted": False, "locust_version": "2.47.0"}
    (group_dir / SAMPLES_FILE).write_text(json.dumps({"run": run, "timeline": [], "locust_errors": [], "samples": recorder.drain()}))
    (group_dir / "stats.csv").write_text(f"Type,Name\n{name},x\n,Aggregated\n")
    (group_dir / "locust.log").write_text(f"{name} log line\n")


def test_merged_report_is_exact_over_all_groups_and_notes_a_group_that_left_nothing(tmp_path):
    rng = random.Random(7)
    voice = [rng.uniform(300, 1000) for _ in range(500)]
    llm = [rng.uniform(100, 400) for _ in range(300)]
    _group_files(tmp_path, "websocket", voice, "2026-01-01T10:00:00+00:00")
    _group_files(tmp_path, "backend", llm, "2026-01-01T10:01:00+00:00")
    outcomes = [GroupOutcome("websocket", 0, False, 20, 3), GroupOutcome("backend", 0, False, 20, 3),
                GroupOutcome("api", -9, False, 20, 2)]
    report = merge_groups(tmp_path, outcomes, load_settings({}, env={}), {"id": "r", "parallel": False})

    single = MetricsRecorder()
    for value in voice:
        single.record("voice_loop", value)
    for value in llm:
        single.record("llm_ttft", value)
    exact = metric_summaries(single)
    assert report["metrics"]["voice_loop"] == exact["voice_loop"] and report["metrics"]["llm_ttft"] == exact["llm_ttft"]
    assert report["summary"]["calls_started"] == 500 and report["summary"]["success_rate"] == 90.0
    assert report["summary"]["failures"] == sum(v > 900 for v in voice)
    # each group's own success rate: the callers' calls; the backend group's requests, as it placed no call
    groups = {g["name"]: g for g in report["run"]["groups"]}
    assert (groups["websocket"]["success_rate"], groups["websocket"]["success_basis"], groups["websocket"]["calls_ended"]) \
        == (90.0, "calls", 500)
    assert (groups["backend"]["success_rate"], groups["backend"]["success_basis"]) == (100.0, "requests")
    assert report["run"]["started_at"] == "2026-01-01T10:00:00+00:00" and report["run"]["ended_at"] == "2026-01-01T10:01:20+00:00"
    assert report["run"]["interrupted"] is True  # the api group left no samples
    assert any("group api left no samples" in m for m in report["summary"]["messages"])

    join_group_files(tmp_path, ["websocket", "backend"])
    assert (tmp_path / "stats.csv").read_text() == "Type,Name\nwebsocket,x\n,Aggregated\nbackend,x\n,Aggregated\n"
    log = (tmp_path / "locust.log").read_text()
    assert log.index("===== group websocket") < log.index("websocket log line") < log.index("===== group backend")


def test_no_samples_at_all_still_gives_a_partial_report_that_fails(tmp_path):
    run = {"id": "r", "started_at": "2026-01-01T10:00:00+00:00", "ended_at": "2026-01-01T10:00:30+00:00"}
    report = merge_groups(tmp_path, [GroupOutcome("api", -9, False, 5, 1)], load_settings({}, env={}), run)
    assert report["run"]["interrupted"] and report["run"]["duration_s"] == 30.0
    assert report["run"]["groups"] == [{"name": "api", "users": 1, "run_time_s": 5, "started_at": None, "duration_s": None, "exit_code": -9}]
    assert report["summary"]["verdict"] == "fail" and report["summary"]["requests"] == 0
    assert any("group api left no samples (Locust exit code -9)" in m for m in report["summary"]["messages"])
