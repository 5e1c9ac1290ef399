"""Build report.json (DESIGN.md, Report contract) from the master's exact samples. Pure: data in, dict out."""

from __future__ import annotations

from config import Settings
from metrics.generator_health import assess_generator
from metrics.histogram import LatencyHistogram
from metrics.recorder import MetricsRecorder, split_request_key
from metrics.slo import evaluate_slos, verdict

SCHEMA = "voiceload.report/1"
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
BACKEND_GROUPS = {"redis", "openai", "speech", "cosmos"}
UNITS = {"agent_real_time_factor": "x"}  # everything else is milliseconds


def metric_summaries(recorder: MetricsRecorder) -> dict[str, dict]:
    """Every exact metric, plus `api_response_time` merged from all HTTP request rows."""
    out = {}
    for name, histogram in sorted(recorder.metrics.items()):
        out[name] = {"group": recorder.metric_groups.get(name, ""), **histogram.summary(),
                     "failures": recorder.metric_failures.get(name, 0), "unit": UNITS.get(name, "ms")}
    for name, failures in recorder.metric_failures.items():
        if name not in out:
            out[name] = {"group": recorder.metric_groups.get(name, ""), **LatencyHistogram().summary(),
                         "failures": failures, "unit": "ms"}
    api = LatencyHistogram()
    api_failures = 0
    for key, histogram in recorder.requests.items():
        if split_request_key(key)[0] in HTTP_METHODS:
            api.merge(histogram)
            api_failures += recorder.request_failures.get(key, 0)
    if api.total:
        out["api_response_time"] = {"group": "api", **api.summary(), "failures": api_failures, "unit": "ms"}
    return out


def request_rows(recorder: MetricsRecorder, duration_s: float) -> list[dict]:
    rows = []
    for key, histogram in sorted(recorder.requests.items()):
        request_type, name = split_request_key(key)
        p50, p95, p99 = histogram.percentiles((50, 95, 99))
        rows.append({"type": request_type, "name": name, "count": histogram.total,
                     "failures": recorder.request_failures.get(key, 0), "p50": p50, "p95": p95, "p99": p99,
                     "max": histogram.max, "rps": round(histogram.total / duration_s, 3) if duration_s > 0 else None})
    return rows


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def rates(recorder: MetricsRecorder) -> dict[str, float | None]:
    """success_rate, critical_error_rate, ws_drop_rate, backend_error_rate in %, None when undefined."""
    total = sum(h.total for h in recorder.requests.values())
    failures = sum(recorder.request_failures.values())
    counters = recorder.counters
    backend_total = backend_failures = 0
    for key, histogram in recorder.requests.items():
        if split_request_key(key)[0] in BACKEND_GROUPS:
            backend_total += histogram.total
            backend_failures += recorder.request_failures.get(key, 0)
    success = _pct(total - failures, total)
    return {
        "success_rate": success,
        "critical_error_rate": _pct(counters.get("calls_failed", 0), counters.get("calls_attempted", 0)),
        "ws_drop_rate": _pct(counters.get("ws_dropped", 0), counters.get("ws_opened", 0)),
        "backend_error_rate": _pct(backend_failures, backend_total),
    }


def phase_rows(recorder: MetricsRecorder, phase_log: list[dict] | None, settings: Settings | None = None) -> list[dict]:
    """report.json phases[]: per phase of the load shape (in the order they ran), its time span and
    target users from the shape's log, its success rate and voice_loop from the exact samples, and (with
    `settings`) the SLOs it broke: `slo_broken` lists them with what was observed."""
    log = list(phase_log or [])
    logged = {entry["name"] for entry in log}
    log += [{"name": name} for name in recorder.phases if name not in logged]
    rows = []
    for entry in log:
        stats = recorder.phases.get(entry["name"])
        voice = stats.voice_loop if stats else LatencyHistogram()
        p50, p95, p99 = voice.percentiles((50, 95, 99)) if voice.total else (None, None, None)
        requests = stats.requests if stats else 0
        failures = stats.failures if stats else 0
        row = {"name": entry["name"], "start_s": entry.get("start_s"), "end_s": entry.get("end_s"),
               "users": entry.get("users"), "requests": requests, "failures": failures,
               "success_rate": _pct(requests - failures, requests), "voice_loop_count": voice.total,
               "voice_loop_p50": p50, "voice_loop_p95": p95, "voice_loop_p99": p99}
        if settings is not None:
            summaries = {name: h.summary() for name, h in (stats.metrics.items() if stats else ())}
            results = evaluate_slos(settings.slo, summaries, {"success_rate": row["success_rate"]}, settings.thresholds)
            row["slo_broken"] = [{"metric": r.metric, "stat": r.stat, "observed": r.observed, "target": r.target}
                                 for r in results if r.passed is False]
        rows.append(row)
    return rows


def success_band(success_rate: float | None) -> str | None:
    """The seed's reading of a success rate."""
    if success_rate is None:
        return None
    if success_rate >= 100.0:
        return "excess capacity (100% success)"
    if success_rate > 80.0:
        return "handling the load adequately (>80% success)"
    if success_rate >= 70.0:
        return "reaching capacity (70-80% success): consider scaling"
    return "overloaded (<70% success)"


def build_report(recorder: MetricsRecorder, settings: Settings, run: dict, timeline: list[dict] | None = None,
                 locust_errors: list[dict] | None = None, resources: dict | None = None,
                 phase_log: list[dict] | None = None) -> dict:
    """The whole report dict. `run` carries the run section's fields (id, times, suite, host, ...)."""
    duration_s = float(run.get("duration_s") or 0.0)
    metrics = metric_summaries(recorder)
    run_rates = rates(recorder)
    slo_results = evaluate_slos(settings.slo, metrics, run_rates, settings.thresholds)
    outcome, reasons = verdict(slo_results, run_rates, settings.thresholds)
    lateness_p99 = metrics.get("frame_send_lateness", {}).get("p99")
    health = assess_generator(lateness_p99, recorder.cpu_samples, settings.thresholds)
    counters = recorder.counters
    total = sum(h.total for h in recorder.requests.values())
    messages = list(reasons)
    if not health.healthy:
        messages.append(health.message)
    band = success_band(run_rates["success_rate"])
    if band:
        messages.append(f"success band: {band}")
    if run.get("interrupted"):
        messages.append("run was interrupted: figures cover only the part that ran")
    if settings.insecure:
        messages.append("warning: TLS certificates were not verified (--insecure): the figures may not come from the "
                        "system you meant to test")
    for lost in run.get("workers_lost") or []:
        messages.append(f"worker {lost['id']} was lost {lost['lost_at_s']:.0f} s into the run (no heartbeat); its samples "
                        "since its last report (a few seconds) are missing and the run finished with the other workers")
    if not total:  # nothing was measured, so nothing held: a gate must not pass a run that never ran
        outcome = "fail"
        messages.append("no requests were made: check the host, the profile and the user counts")
    errors = [{"kind": kind, "message": message, "count": count}
              for (kind, message), count in recorder.errors.most_common()]
    errors += locust_errors or []
    return {
        "schema": SCHEMA,
        "run": run,
        "summary": {
            "verdict": outcome,
            "success_rate": run_rates["success_rate"],
            "requests": total,
            "failures": sum(recorder.request_failures.values()),
            "calls_attempted": counters.get("calls_attempted", 0),
            "calls_started": counters.get("calls_started", 0),
            "calls_completed": counters.get("calls_completed", 0),
            "calls_failed": counters.get("calls_failed", 0),
            "calls_interrupted": counters.get("calls_interrupted", 0),
            "ws_dropped": counters.get("ws_dropped", 0),
            "audio_underruns": counters.get("audio_underruns", 0),
            "malformed_frames": counters.get("malformed_frames", 0),
            "dtmf_sent": counters.get("dtmf_sent", 0),
            "relay_events": counters.get("relay_events", 0),
            "flows_completed": counters.get("flows_completed", 0),
            "flows_failed": counters.get("flows_failed", 0),
            "critical_error_rate": run_rates["critical_error_rate"],
            "ws_drop_rate": run_rates["ws_drop_rate"],
            "generator_healthy": health.healthy,
            "generator": {"frame_lateness_p99_ms": lateness_p99, "cpu_max_percent": health.cpu_max_percent,
                          "cpu_over_90_fraction": health.cpu_over_limit_fraction, "message": health.message},
            "messages": messages,
        },
        "metrics": metrics,
        "slo": [r.as_dict() for r in slo_results],
        "requests": request_rows(recorder, duration_s),
        "phases": phase_rows(recorder, phase_log, settings),
        "resources": resources or {"target": {}, "generator": {"cpu_max_percent": health.cpu_max_percent}, "bottlenecks": []},
        "errors": errors,
        "counters": dict(sorted(counters.items())),
        "timeline": timeline or [],
    }
