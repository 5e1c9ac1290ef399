"""The verdict means what a caller experienced (pure: recorders in, report out; no network)."""

from __future__ import annotations

from config import SloTarget, VerdictThresholds, load_settings
from metrics.recorder import MetricsRecorder
from metrics.slo import evaluate_slos, verdict
from reporting.report import build_report, success_rates, unanswered_notes

RUN = {"id": "t", "duration_s": 30.0}


def settings():
    return load_settings(env={})


def a_dead_agent() -> MetricsRecorder:
    """Calls set up, sockets held, pings answered: but the agent never said a word."""
    recorder = MetricsRecorder()
    for _ in range(9):
        recorder.count("calls_attempted")
        recorder.count("calls_started")
        recorder.count("ws_opened")
        recorder.record_request("POST", "start_call", 5.0, failed=False)
        recorder.record("ws_handshake", 4.0, "websocket")
        recorder.record_request("websocket", "ws_handshake", 4.0, failed=False)
        for _ in range(8):
            recorder.record("ws_ping_rtt", 0.5, "websocket")
            recorder.record_request("websocket", "ws_ping_rtt", 0.5, failed=False)
        recorder.record_failure("voice_loop")
        recorder.record_request("voice", "voice_loop", 8000.0, failed=True)
        recorder.count("calls_failed")
        recorder.count("calls_failed_unanswered")
        recorder.count("turns_unanswered")
    return recorder


def test_a_dead_agent_fails_however_many_requests_succeeded():
    report = build_report(a_dead_agent(), settings(), dict(RUN))
    summary = report["summary"]
    assert summary["verdict"] == "fail" and summary["success_rate"] == 0.0 and summary["success_basis"] == "calls"
    assert summary["error_rate"] == round(100 * 9 / (9 * 11), 2)  # pings and handshakes succeeded: request errors are low
    voice_loop = next(s for s in report["slo"] if s["metric"] == "voice_loop")
    assert voice_loop["status"] == "fail" and voice_loop["note"] == "the agent answered 0 of 9 turns"
    assert "voice_loop: the agent answered 0 of 9 turns" in summary["messages"]
    assert "calls: 9 of 9 failed (9 had a turn no one answered)" in summary["messages"]
    assert "llm_ttft" in summary["not_measured"] and "voice_loop" not in summary["not_measured"]


def test_one_failed_call_in_a_hundred_fails_the_run_and_a_slower_healthy_run_only_warns():
    recorder = MetricsRecorder()
    recorder.count("calls_attempted", 100)
    recorder.count("calls_completed", 99)
    recorder.count("calls_failed", 1)
    recorder.record_request("voice", "voice_loop", 800.0, failed=False)
    recorder.record("voice_loop", 800.0)  # misses 700, not by 50 %
    report = build_report(recorder, settings(), dict(RUN))
    assert report["summary"]["success_rate"] == 99.0 and report["summary"]["verdict"] == "fail"
    critical = next(s for s in report["slo"] if s["metric"] == "critical_error_rate")
    assert critical["status"] == "fail" and "critical_error_rate 1% misses <= 0.5%" in report["summary"]["messages"]
    recorder.counters["calls_failed"] = 0
    recorder.counters["calls_completed"] = 100
    assert build_report(recorder, settings(), dict(RUN))["summary"]["verdict"] == "warn"


def test_a_run_without_calls_reads_its_request_success_rate():
    rates = success_rates({}, requests=200, failures=10)
    assert rates == {"success_rate": 95.0, "success_basis": "requests", "error_rate": 5.0, "critical_error_rate": None}
    calls = success_rates({"calls_attempted": 4, "calls_completed": 3, "calls_failed": 1}, requests=500, failures=1)
    assert (calls["success_rate"], calls["success_basis"], calls["critical_error_rate"]) == (75.0, "calls", 25.0)
    assert success_rates({}, 0, 0)["success_basis"] is None


def test_calls_that_never_ended_are_not_a_pass():
    recorder = MetricsRecorder()
    recorder.count("calls_attempted", 3)
    recorder.count("calls_interrupted", 3)
    recorder.record_request("websocket", "ws_handshake", 3.0, failed=False)
    report = build_report(recorder, settings(), dict(RUN))
    success = next(s for s in report["slo"] if s["metric"] == "success_rate")
    assert success["status"] == "fail" and success["note"] == "no call ended within the run (3 were cut off by its end)"
    assert report["summary"]["verdict"] == "fail"


def test_unanswered_notes_say_what_the_caller_got():
    recorder = MetricsRecorder()
    recorder.count("turns_cut_by_hangup", 2)
    recorder.record_failure("voice_loop")
    recorder.record_failure("voice_loop[emergency]")
    recorder.record_failure("stt_final")
    recorder.record_failure("llm_ttft")
    recorder.record_failure("ws_ping_rtt")
    recorder.record("ws_ping_rtt", 1.0)  # it has samples: judged on them
    notes = unanswered_notes(recorder, {"success_basis": "calls", "success_rate": 0.0})
    assert notes == {"voice_loop": "the agent answered 0 of 3 turns (1 timed out, 2 cut by the planned hang-up)",
                     "voice_loop[emergency]": "the agent answered 0 of 1 emergency turns",
                     "stt_final": "the agent showed no transcript of the caller in 1 answered turns",
                     "llm_ttft": "llm_ttft: all 1 attempts failed"}


def test_slo_statuses():
    thresholds = VerdictThresholds()
    targets = [SloTarget(metric="voice_loop", target=700), SloTarget(metric="llm_ttft", target=600),
               SloTarget(metric="success_rate", stat="value", op=">=", target=95),
               SloTarget(metric="critical_error_rate", stat="value", op="<=", target=0.5, on_miss="fail")]
    rates = {"success_rate": 75.0, "success_basis": "calls", "critical_error_rate": 0.4}
    results = {r.metric: r for r in evaluate_slos(targets, {}, rates, thresholds, {"voice_loop": "the agent answered 0 of 2 turns"})}
    assert (results["voice_loop"].status, results["voice_loop"].passed) == ("fail", False)
    assert results["llm_ttft"].status == "no_data" and results["llm_ttft"].passed is None
    assert results["success_rate"].status == "fail"  # below the 80 % floor, not just the 95 % target
    assert results["critical_error_rate"].status == "pass"
    outcome, reasons = verdict(list(results.values()), rates, thresholds)
    assert outcome == "fail" and reasons == ["call success rate 75.0% is below 80%", "voice_loop: the agent answered 0 of 2 turns"]
