"""Pure math: exact histogram percentiles and merging, SLO evaluation, verdicts, generator health."""

import math
import random

import pytest

from config import SloTarget, VerdictThresholds
from metrics.generator_health import assess_generator
from metrics.histogram import LatencyHistogram
from metrics.recorder import MetricsRecorder
from metrics.slo import evaluate_slos, verdict


def nearest_rank(samples, p):
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def test_percentiles_are_exact_to_a_hundredth_of_a_ms():
    rng = random.Random(7)
    samples = [rng.lognormvariate(6, 0.5) for _ in range(5000)]
    histogram = LatencyHistogram()
    histogram.record_many(samples)
    for p in (50, 90, 95, 99, 100):
        assert histogram.percentile(p) == pytest.approx(nearest_rank(samples, p), abs=0.006)
    assert histogram.summary()["mean"] == pytest.approx(sum(samples) / len(samples), abs=0.01)


def test_merging_two_workers_equals_one_process():
    rng = random.Random(3)
    a_samples = [rng.uniform(100, 900) for _ in range(3000)]
    b_samples = [rng.uniform(300, 1500) for _ in range(1000)]
    a, b, together = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    a.record_many(a_samples)
    b.record_many(b_samples)
    together.record_many(a_samples + b_samples)
    merged = LatencyHistogram.from_wire(a.to_wire())
    merged.merge(LatencyHistogram.from_wire(b.to_wire()))
    assert merged.summary() == together.summary()


def test_recorder_drain_and_absorb_are_lossless():
    worker, master = MetricsRecorder(), MetricsRecorder()
    for ms in (10.0, 20.0, 30.0):
        worker.record("voice_loop", ms)
    worker.record_request("voice", "voice_loop", 10.0, failed=True)
    worker.count("calls_started", 2)
    worker.error("ws_dropped", "gone")
    master.absorb(worker.drain())
    assert worker.metrics == {} and worker.counters == {}
    assert master.metrics["voice_loop"].summary()["p50"] == 20.0
    assert master.counters["calls_started"] == 2 and master.errors[("ws_dropped", "gone")] == 1
    assert sum(master.request_failures.values()) == 1


def test_empty_histogram():
    assert LatencyHistogram().summary()["p95"] is None
    assert LatencyHistogram().percentile(50) is None


THRESHOLDS = VerdictThresholds()
TARGETS = [SloTarget(metric="voice_loop", op="<=", target=700), SloTarget(metric="ws_handshake", op="<", target=150),
           SloTarget(metric="success_rate", stat="value", op=">=", target=95)]


def judge(voice_p95, handshake_p95=20.0, success=100.0):
    metrics = {"voice_loop": {"count": 10, "p95": voice_p95}, "ws_handshake": {"count": 10, "p95": handshake_p95}}
    rates = {"success_rate": success}
    results = evaluate_slos(TARGETS, metrics, rates, THRESHOLDS)
    return results, verdict(results, rates, THRESHOLDS)


def test_verdict_levels():
    assert judge(650)[1][0] == "pass"
    results, (level, reasons) = judge(800)
    assert level == "warn" and results[0].status == "miss" and "voice_loop" in reasons[0]
    assert judge(1051)[1][0] == "fail"  # missed by more than 50 %
    assert judge(1050)[1][0] == "warn"
    assert judge(650, success=79.9)[1][0] == "fail"
    assert judge(650, success=90)[1][0] == "warn"


def test_no_samples_is_no_data_not_pass():
    results = evaluate_slos(TARGETS, {}, {"success_rate": None}, THRESHOLDS)
    assert all(r.status == "no_data" and r.passed is None for r in results)


def test_ws_drops_fail_the_run():
    results = evaluate_slos(TARGETS, {}, {}, THRESHOLDS)
    assert verdict(results, {"ws_drop_rate": 12.0}, THRESHOLDS)[0] == "fail"
    assert verdict(results, {"ws_drop_rate": 5.0}, THRESHOLDS)[0] == "pass"


def test_generator_health():
    assert assess_generator(2.0, [30.0] * 20, THRESHOLDS).healthy
    late = assess_generator(12.0, [30.0] * 20, THRESHOLDS)
    assert not late.healthy and "Add workers" in late.message
    assert not assess_generator(1.0, [95.0] * 3 + [20.0] * 17, THRESHOLDS).healthy  # 15 % of the time
    assert assess_generator(1.0, [95.0] * 1 + [20.0] * 19, THRESHOLDS).healthy  # 5 %
