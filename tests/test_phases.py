"""Per-phase results: samples recorded while the load shape is in a phase are filed under it, survive
shipping between processes, and become report.json phases[] in the order the phases ran."""

from __future__ import annotations

from metrics.histogram import LatencyHistogram
from metrics.recorder import MetricsRecorder
from reporting.report import phase_rows


def test_samples_are_filed_under_the_current_phase_and_merge_across_processes():
    worker_a, worker_b, master = MetricsRecorder(), MetricsRecorder(), MetricsRecorder()
    worker_a.record("voice_loop", 100.0)  # before any phase: in the totals only
    for worker, base in ((worker_a, 500.0), (worker_b, 600.0)):
        worker.phase = "wave 1 peak"
        for i in range(10):
            worker.record("voice_loop", base + i)
            worker.record_request("voice", "voice_loop", base + i, failed=i == 0)
        master.absorb(worker.drain())
        assert worker.phase == "wave 1 peak"  # a drain does not end the phase
        worker.phase = "wave 1 valley"
        worker.record_request("GET", "health", 2.0, failed=False)
        master.absorb(worker.drain())

    rows = phase_rows(master, [{"name": "wave 1 peak", "start_s": 0.0, "end_s": 10.0, "users": 8},
                               {"name": "wave 1 valley", "start_s": 10.0, "end_s": 20.0, "users": 2}])
    assert [r["name"] for r in rows] == ["wave 1 peak", "wave 1 valley"]
    peak, valley = rows
    expected = LatencyHistogram()
    expected.record_many([500.0 + i for i in range(10)] + [600.0 + i for i in range(10)])
    assert peak["voice_loop_count"] == 20 and peak["voice_loop_p95"] == expected.percentile(95)
    assert peak["requests"] == 20 and peak["failures"] == 2 and peak["success_rate"] == 90.0
    assert (peak["start_s"], peak["end_s"], peak["users"]) == (0.0, 10.0, 8)
    assert valley["requests"] == 2 and valley["success_rate"] == 100.0 and valley["voice_loop_p95"] is None
    assert master.metrics["voice_loop"].total == 21


def test_a_phase_with_samples_but_missing_from_the_log_is_still_reported():
    recorder = MetricsRecorder()
    recorder.phase = "burst 1"
    recorder.record_request("GET", "health", 1.0, failed=True)
    rows = phase_rows(recorder, [])
    assert rows == [{"name": "burst 1", "start_s": None, "end_s": None, "users": None, "requests": 1, "failures": 1,
                     "calls_started": 0, "calls_completed": 0, "calls_failed": 0, "calls_dropped": 0, "success_rate": 0.0,
                     "success_basis": "requests", "voice_loop_count": 0, "voice_loop_p50": None, "voice_loop_p95": None,
                     "voice_loop_p99": None}]


def test_a_phase_with_calls_reads_its_own_call_success_and_fails_what_it_never_answered():
    """A step where calls ended is judged on them, not on its requests (pings, frames); a step whose calls
    got no answer at all breaks voice_loop with what the caller got, instead of having 'no data'."""
    from config import load_settings

    recorder = MetricsRecorder()
    recorder.phase = "step 1 (2 users)"
    for _ in range(40):
        recorder.record_request("websocket", "ws_ping_rtt", 1.0, failed=False)  # per-call events stay out of it
    recorder.record("voice_loop", 400.0)
    recorder.count("calls_started", 2)
    recorder.count("calls_completed")
    recorder.count("calls_failed")
    recorder.phase = "step 2 (4 users)"
    recorder.count("calls_started", 4)
    recorder.count("calls_failed", 4)
    for _ in range(4):
        recorder.record_failure("voice_loop")
    first, second = phase_rows(recorder, [], load_settings(env={}))
    assert (first["success_rate"], first["success_basis"], first["calls_completed"], first["calls_failed"]) == (50.0, "calls", 1, 1)
    assert second["success_rate"] == 0.0 and second["voice_loop_count"] == 0
    broken = {entry["metric"]: entry for entry in second["slo_broken"]}
    assert broken["voice_loop"]["note"] == "the agent answered 0 of 4 turns" and broken["voice_loop"]["observed"] is None
    assert "critical_error_rate" in broken and "success_rate" in broken
