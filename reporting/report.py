"""Build report.json (docs/design.md, Report contract) from the master's exact samples. Pure: data in, dict out."""

from __future__ import annotations

from typing import Mapping

from config import Settings
from metric_registry import BACKEND_GROUPS, group, unit
from metrics.generator_health import assess_generator
from metrics.histogram import LatencyHistogram
from metrics.recorder import MetricsRecorder, PhaseStats, split_request_key
from metrics.slo import evaluate_slos, verdict

SCHEMA = "voiceload.report/1"
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def metric_summaries(recorder: MetricsRecorder) -> dict[str, dict]:
    """Every exact metric, plus `api_response_time` merged from all HTTP request rows. Units come from
    metric_registry; the group is the one the samples were recorded under (the registry's, for the API)."""
    out = {}
    for name, histogram in sorted(recorder.metrics.items()):
        out[name] = {"group": recorder.metric_groups.get(name, ""), **histogram.summary(),
                     "failures": recorder.metric_failures.get(name, 0), "unit": unit(name)}
    for name, failures in recorder.metric_failures.items():
        if name not in out:
            out[name] = {"group": recorder.metric_groups.get(name, ""), **LatencyHistogram().summary(),
                         "failures": failures, "unit": unit(name)}
    api = LatencyHistogram()
    api_failures = 0
    for key, histogram in recorder.requests.items():
        if split_request_key(key)[0] in HTTP_METHODS:
            api.merge(histogram)
            api_failures += recorder.request_failures.get(key, 0)
    if api.total:
        out["api_response_time"] = {"group": group("api_response_time"), **api.summary(), "failures": api_failures,
                                    "unit": unit("api_response_time")}
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


def success_rates(counters: Mapping[str, int], requests: int, failures: int) -> dict[str, float | str | None]:
    """The success rate a caller would give the run: calls that succeeded, % of the calls that ended (calls
    cut off by the run's end are not judged). Only a run that placed no calls at all reads the request
    success rate instead, and `success_basis` says which. Request-level failures are `error_rate`;
    `critical_error_rate` is the failed calls' share."""
    completed, failed = counters.get("calls_completed", 0), counters.get("calls_failed", 0)
    failed += counters.get("calls_dropped_at_cap", 0)  # an open model's call due while too many ran: a caller not served
    ended = completed + failed
    placed_calls = ended or counters.get("calls_attempted", 0)
    return {
        "success_rate": _pct(completed, ended) if placed_calls else _pct(requests - failures, requests),
        "success_basis": "calls" if placed_calls else ("requests" if requests else None),
        "error_rate": _pct(failures, requests),
        "critical_error_rate": _pct(failed, ended),
    }


def rates(recorder: MetricsRecorder) -> dict[str, float | str | None]:
    """success_rate (and its basis), error_rate, critical_error_rate, ws_drop_rate, backend_error_rate in %,
    None when undefined."""
    total = sum(h.total for h in recorder.requests.values())
    failures = sum(recorder.request_failures.values())
    counters = recorder.counters
    backend_total = backend_failures = 0
    for key, histogram in recorder.requests.items():
        if split_request_key(key)[0] in BACKEND_GROUPS:
            backend_total += histogram.total
            backend_failures += recorder.request_failures.get(key, 0)
    return {
        **success_rates(counters, total, failures),
        "ws_drop_rate": _pct(counters.get("ws_dropped", 0), counters.get("ws_opened", 0)),
        "backend_error_rate": _pct(backend_failures, backend_total),
    }


def unanswered_notes(recorder: MetricsRecorder | PhaseStats, run_rates: Mapping[str, object],
                     whole_run: bool = True) -> dict[str, str]:
    """SLO metrics the run should have produced and did not, each with one line on what the caller got:
    every attempt at them failed (no turn answered, no transcript shown), or (`whole_run`) no call ended at
    all. A load phase may be shorter than a call: calls that end after it are judged in a later one."""
    metrics, failures, counters = recorder.metrics, recorder.metric_failures, recorder.counters
    cut = counters.get("turns_cut_by_hangup", 0)  # turns the caller hung up on, as planned, before any answer
    notes = {}
    for name in sorted({*failures, *(["voice_loop"] if cut else [])}):
        failed = failures.get(name, 0)
        if name in metrics and metrics[name].total:
            continue
        if name == "voice_loop":
            notes[name] = f"the agent answered 0 of {failed + cut} turns" + (
                f" ({failed} timed out, {cut} cut by the planned hang-up)" if failed and cut else
                " (each cut by the planned hang-up before an answer)" if cut else "")
        elif name.startswith("voice_loop["):
            notes[name] = f"the agent answered 0 of {failed} {name[len('voice_loop['):-1]} turns"
        elif name.startswith("stt_"):
            notes[name] = f"the agent showed no transcript of the caller in {failed} answered turns"
        elif failed:
            notes[name] = f"{name}: all {failed} attempts failed"
    if whole_run and counters.get("calls_attempted") and run_rates.get("success_basis") == "calls" \
            and run_rates.get("success_rate") is None:
        note = f"no call ended within the run ({counters.get('calls_interrupted', 0)} were cut off by its end)"
        notes["success_rate"] = notes["critical_error_rate"] = note
    return notes


def phase_rows(recorder: MetricsRecorder, phase_log: list[dict] | None, settings: Settings | None = None) -> list[dict]:
    """report.json phases[]: per phase of the load shape (in the order they ran), its time span and
    target users from the shape's log, its calls, success rate and voice_loop from the exact samples, and
    (with `settings`) the SLOs it broke: `slo_broken` lists them with what was observed."""
    log = list(phase_log or [])
    logged = {entry["name"] for entry in log}
    log += [{"name": name} for name in recorder.phases if name not in logged]
    rows = []
    for entry in log:
        stats = recorder.phases.get(entry["name"]) or PhaseStats()
        voice = stats.voice_loop
        p50, p95, p99 = voice.percentiles((50, 95, 99)) if voice.total else (None, None, None)
        phase_rates = success_rates(stats.counters, stats.requests, stats.failures)
        row = {"name": entry["name"], "start_s": entry.get("start_s"), "end_s": entry.get("end_s"),
               "users": entry.get("users"), "requests": stats.requests, "failures": stats.failures,
               "calls_started": stats.counters.get("calls_started", 0),
               "calls_completed": stats.counters.get("calls_completed", 0),
               "calls_failed": stats.counters.get("calls_failed", 0),
               "calls_dropped": stats.counters.get("calls_dropped_at_cap", 0) + stats.counters.get("calls_dropped_at_setup", 0),
               "success_rate": phase_rates["success_rate"], "success_basis": phase_rates["success_basis"],
               "voice_loop_count": voice.total, "voice_loop_p50": p50, "voice_loop_p95": p95, "voice_loop_p99": p99}
        if settings is not None:
            summaries = {name: h.summary() for name, h in stats.metrics.items()}
            results = evaluate_slos(settings.slo, summaries, phase_rates, settings.thresholds,
                                    unanswered_notes(stats, phase_rates, whole_run=False))
            row["slo_broken"] = [{"metric": r.metric, "stat": r.stat, "observed": r.observed, "target": r.target,
                                  **({"note": r.note} if r.note else {})}
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


FAILURE_WORDS = {"setup": "not set up", "dropped": "dropped their socket", "unanswered": "had a turn no one answered",
                 "never_heard": "hung up without hearing the agent", "checks": "failed their flow's checks",
                 "other": "failed otherwise"}


def call_failure_counts(counters: Mapping[str, int]) -> dict[str, int]:
    """Failed calls by why (voice.call_result failure kinds)."""
    prefix = "calls_failed_"
    return {name[len(prefix):]: count for name, count in sorted(counters.items()) if name.startswith(prefix) and count}


def calls_line(counters: Mapping[str, int]) -> str | None:
    """One line on the calls that failed and why, as a caller would put it (an open model's calls that were
    due while too many still ran count as failed: those callers were not served)."""
    at_cap = counters.get("calls_dropped_at_cap", 0)
    failed = counters.get("calls_failed", 0) + at_cap
    if not failed:
        return None
    ended = failed + counters.get("calls_completed", 0)
    kinds = call_failure_counts(counters)
    why = ", ".join([f"{count} {FAILURE_WORDS.get(kind, kind)}" for kind, count in kinds.items()]
                    + ([f"{at_cap} not placed: due while the most calls at once were still running"] if at_cap else []))
    return f"calls: {failed} of {ended} failed" + (f" ({why})" if why else "")


def judge(recorder: MetricsRecorder, settings: Settings, metrics: dict[str, dict] | None = None):
    """(metrics, rates, SLO results, verdict, reasons) of the samples so far: the report's and the web UI's."""
    metrics = metric_summaries(recorder) if metrics is None else metrics
    run_rates = rates(recorder)
    slo_results = evaluate_slos(settings.slo, metrics, run_rates, settings.thresholds, unanswered_notes(recorder, run_rates))
    outcome, reasons = verdict(slo_results, run_rates, settings.thresholds)
    return metrics, run_rates, slo_results, outcome, reasons


def build_report(recorder: MetricsRecorder, settings: Settings, run: dict, timeline: list[dict] | None = None,
                 locust_errors: list[dict] | None = None, resources: dict | None = None,
                 phase_log: list[dict] | None = None) -> dict:
    """The whole report dict. `run` carries the run section's fields (id, times, suite, host, ...)."""
    duration_s = float(run.get("duration_s") or 0.0)
    metrics, run_rates, slo_results, outcome, reasons = judge(recorder, settings)
    lateness_p99 = metrics.get("frame_send_lateness", {}).get("p99")
    health = assess_generator(lateness_p99, recorder.cpu_samples, settings.thresholds)
    counters = recorder.counters
    total = sum(h.total for h in recorder.requests.values())
    messages = list(reasons)
    if line := calls_line(counters):
        messages.append(line)
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
            "success_basis": run_rates["success_basis"],
            "error_rate": run_rates["error_rate"],
            "requests": total,
            "failures": sum(recorder.request_failures.values()),
            "calls_attempted": counters.get("calls_attempted", 0),
            "calls_started": counters.get("calls_started", 0),
            "calls_ended": counters.get("calls_completed", 0) + counters.get("calls_failed", 0),
            "calls_completed": counters.get("calls_completed", 0),
            "calls_failed": counters.get("calls_failed", 0),
            "call_failures": call_failure_counts(counters),
            "calls_interrupted": counters.get("calls_interrupted", 0),
            "calls_arrived": counters.get("calls_arrived", 0),
            "calls_dropped": counters.get("calls_dropped_at_cap", 0) + counters.get("calls_dropped_at_setup", 0),
            "calls_not_placed": counters.get("calls_dropped_at_cap", 0),
            "turns_answered": counters.get("turns_answered", 0),
            "turns_unanswered": counters.get("turns_unanswered", 0),
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
            "not_measured": [r.metric for r in slo_results if r.status == "no_data"],
            "messages": messages,
        },
        "thresholds": settings.thresholds.model_dump(),
        "metrics": metrics,
        "slo": [r.as_dict() for r in slo_results],
        "requests": request_rows(recorder, duration_s),
        "phases": phase_rows(recorder, phase_log, settings),
        "resources": resources or {"target": {}, "generator": {"cpu_max_percent": health.cpu_max_percent}, "bottlenecks": []},
        "errors": errors,
        "counters": dict(sorted(counters.items())),
        "timeline": timeline or [],
    }
