"""The live view of a run in progress, from the exact merged samples (never Locust's bucketed stats).

`live_snapshot(environment, clock)` is what /voiceload/live.json serves and what the Voice SLOs tabs of
Locust's web UI show: every metric's count and p50/p95/p99 with its SLO target and status (the same SLO
evaluation as the report), the calls, the load shape's phase, the generator's health and voice_loop p95
over time. `metric_rows` / `run_rows` flatten it into the rows of those tabs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner

from locust_adapters import internals
from metric_registry import GROUPS, charted, meaning, unit
from metric_registry import group as metric_group
from metrics.generator_health import assess_generator
from metrics.recorder import MetricsRecorder
from reporting.report import judge
from reporting.svg_chart import Reference, Series, line_chart
from users.run_context import context_of

SCHEMA = "voiceload.live/1"
# SLO statuses from best to worst: a metric with several targets shows its worst
STATUS_ORDER = ("pass", "no_data", "miss", "fail")
STATUS_MARKS = {"pass": "✔ pass", "miss": "✘ miss", "fail": "✘ fail", "no_data": "– no data"}
SPARK = "▁▂▃▄▅▆▇█"
DOWNLOADS = ("report.json", "report.html", "junit.xml")


def _group_rank(group: str) -> int:
    """In metric_registry's GROUPS order (voice first, then the sockets, the backends, the API); unknown
    groups after them, metrics with no samples yet last."""
    return GROUPS.index(group) if group in GROUPS else (len(GROUPS) if group else len(GROUPS) + 1)


def _phase(environment: Environment) -> str | None:
    shape = environment.shape_class
    phase = getattr(shape, "phase", None) if shape is not None else None
    return str(phase) if phase is not None else None


def _calls(counters) -> dict[str, int]:
    """Every call attempt ends as exactly one of completed / failed / interrupted (users/voice.py), so
    the attempts not yet ended are the calls in progress (or being set up)."""
    attempted = counters.get("calls_attempted", 0)
    ended = sum(counters.get(name, 0) for name in ("calls_completed", "calls_failed", "calls_interrupted"))
    return {"in_progress": max(0, attempted - ended), "attempted": attempted,
            "started": counters.get("calls_started", 0), "completed": counters.get("calls_completed", 0),
            "failed": counters.get("calls_failed", 0), "interrupted": counters.get("calls_interrupted", 0),
            "dropped": counters.get("ws_dropped", 0)}


def _workers(runner) -> list[dict]:
    if not isinstance(runner, MasterRunner):
        return []
    return internals.worker_rows(runner)


def _timeline(clock) -> list[dict]:
    """Users and each charted metric's (metric_registry) p95 per interval."""
    points = list(getattr(clock, "timeline", None) or [])
    keys = [f"{name}_p95" for name in charted()]
    return [{"t_s": p.get("t_s"), "users": p.get("users"), **{key: p.get(key) for key in keys}} for p in points]


def voice_loop_chart(timeline: list[dict], target: float | None) -> str | None:
    """The inline SVG of voice_loop p95 per interval (the report's chart code), None before any sample."""
    points = [(float(p["t_s"]), p["voice_loop_p95"]) for p in timeline if p.get("t_s") is not None]
    reference = Reference(f"SLO {target:g} ms", target) if target is not None else None
    return line_chart([Series("voice_loop p95", points, "#2563eb")], title="voice_loop p95 over time",
                      x_label="seconds into the run", y_label="ms", reference=reference, width=640, height=220)


def sparkline(values: list[float | None]) -> str:
    """A text sparkline of the last values (gaps as spaces), for the Locust tab, which shows only text."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    span = (hi - lo) or 1.0
    return "".join(" " if v is None else SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] for v in values)


def _slo_text(result: dict) -> str:
    return f"{result['stat']} {result['op']} {result['target']:g}"


def live_snapshot(environment: Environment, clock, recorder: MetricsRecorder | None = None) -> dict[str, Any]:
    """Everything the Voice SLOs tab shows, as one JSON-able dict."""
    context = context_of(environment)  # the run's: settings and (unless given) exact samples
    settings = context.settings
    recorder = context.recorder if recorder is None else recorder
    runner = environment.runner
    summaries, run_rates, evaluated, outcome, reasons = judge(recorder, settings)
    slo_results = [r.as_dict() for r in evaluated]
    by_metric: dict[str, list[dict]] = {}
    for result in slo_results:
        by_metric.setdefault(result["metric"], []).append(result)

    metrics = []
    for name, summary in summaries.items():
        metrics.append(_metric_entry(name, summary, by_metric.get(name, [])))
    for name, results in by_metric.items():  # an SLO on a metric with no samples yet: a row that says so
        if name not in summaries and results[0]["stat"] != "value":
            metrics.append(_metric_entry(name, {"group": "", "count": 0, "p50": None, "p95": None, "p99": None,
                                                "failures": 0, "unit": unit(name)}, results))
    metrics.sort(key=lambda m: (_group_rank(m["group"]), m["group"], m["metric"]))

    lateness_p99 = summaries.get("frame_send_lateness", {}).get("p99")
    health = assess_generator(lateness_p99, recorder.cpu_samples, settings.thresholds)
    workers = _workers(runner)
    cpu_now = ({w["id"]: w["cpu_percent"] for w in workers} if isinstance(runner, MasterRunner)
               else {"local": getattr(runner, "current_cpu_usage", None)})
    timeline = _timeline(clock)
    voice_target = next((r["target"] for r in by_metric.get("voice_loop", []) if r["stat"] == "p95"), None)
    started = getattr(clock, "started_at", None)
    ended = getattr(clock, "ended_at", None)
    running = runner is not None and runner.state in ("spawning", "running")
    elapsed = None
    if started is not None:
        elapsed = round(((dt.datetime.now(dt.timezone.utc) if running or ended is None else ended) - started).total_seconds(), 1)
    return {
        "schema": SCHEMA,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "state": runner.state if runner is not None else "missing",
        "run": {"started_at": started.isoformat(timespec="seconds") if started else None, "elapsed_s": elapsed,
                "profile": settings.profile, "shape": type(environment.shape_class).__name__ if environment.shape_class else None,
                "workers": runner.worker_count if isinstance(runner, MasterRunner) else 0},
        "users": runner.user_count if runner is not None else 0,
        "user_classes": internals.users_per_class(runner),
        "calls": _calls(recorder.counters),
        "phase": _phase(environment),
        "verdict": {"so_far": outcome, "reasons": reasons},
        "rates": run_rates,
        "metrics": metrics,
        "slo": slo_results,
        "generator": {"healthy": health.healthy, "frame_send_lateness_p99_ms": lateness_p99,
                      "cpu_max_percent": health.cpu_max_percent, "cpu_now_percent": cpu_now, "message": health.message},
        "workers": workers,
        "timeline": timeline,
        "voice_loop_chart_svg": voice_loop_chart(timeline, voice_target),
        "downloads": list(DOWNLOADS),
    }


def _metric_entry(name: str, summary: dict, results: list[dict]) -> dict:
    status = max((r["status"] for r in results), key=STATUS_ORDER.index) if results else None
    return {"metric": name, "group": summary.get("group", ""), "count": summary.get("count", 0),
            "p50": summary.get("p50"), "p95": summary.get("p95"), "p99": summary.get("p99"),
            "failures": summary.get("failures", 0), "unit": summary.get("unit", "ms"),
            "slo": "; ".join(_slo_text(r) for r in results) or None, "status": status, "meaning": meaning(name)}


def metric_rows(snapshot: dict) -> list[dict]:
    """Rows of the Voice SLOs tab: one per metric, then one per rate SLO (success rate, ...)."""
    rows = [{"metric": m["metric"], "group": m["group"], "count": m["count"],
             "p50": _blank(m["p50"]), "p95": _blank(m["p95"]), "p99": _blank(m["p99"]),
             "slo": m["slo"] or "", "status": STATUS_MARKS.get(m["status"], ""), "unit": m["unit"],
             "meaning": m["meaning"]} for m in snapshot["metrics"]]
    for result in snapshot["slo"]:
        if result["stat"] == "value":
            observed = "" if result["observed"] is None else f" · is {result['observed']:g} %"
            rows.append({"metric": result["metric"], "group": metric_group(result["metric"]) or "rate", "count": "",
                         "p50": "", "p95": "", "p99": "", "slo": f"{result['op']} {result['target']:g} %",
                         "status": STATUS_MARKS[result["status"]] + observed, "unit": "%",
                         "meaning": meaning(result["metric"]) or result.get("description", "")})
    return _in_order(rows)


def run_rows(snapshot: dict) -> list[dict]:
    """Rows of the Voice run tab: what a caller sees at this moment, as name / value pairs."""
    calls = snapshot["calls"]
    generator = snapshot["generator"]
    cpu_now = ", ".join(f"{name} {_num(value)} %" for name, value in generator["cpu_now_percent"].items() if value is not None)
    trend = [p["voice_loop_p95"] for p in snapshot["timeline"][-30:]]
    last = next((v for v in reversed(trend) if v is not None), None)
    pairs = [
        ("state", snapshot["state"]),
        ("verdict so far", snapshot["verdict"]["so_far"] + ("" if not snapshot["verdict"]["reasons"]
                                                          else ": " + "; ".join(snapshot["verdict"]["reasons"]))),
        ("users", snapshot["users"]),
        ("calls in progress", calls["in_progress"]),
        ("calls started / completed / failed / dropped",
         f"{calls['started']} / {calls['completed']} / {calls['failed']} / {calls['dropped']}"),
        ("load shape phase", snapshot["phase"] or "–"),
        ("workers", snapshot["run"]["workers"]),
        ("generator", ("healthy · " if generator["healthy"] else "OVERLOADED · ") + generator["message"]),
        ("frame_send_lateness p99", "–" if generator["frame_send_lateness_p99_ms"] is None
         else f"{generator['frame_send_lateness_p99_ms']:g} ms"),
        ("generator CPU now / max", f"{cpu_now or '–'} / "
         + ("–" if generator["cpu_max_percent"] is None else f"{generator['cpu_max_percent']:g} %")),
        ("voice_loop p95 per 5 s (last 30)", (sparkline(trend) + f"  last {_num(last)} ms") if last is not None else "–"),
        ("chart, downloads", "open ./voiceload/ (linked in Download Data)"),
    ]
    return _in_order([{"what": name, "value": "" if value is None else value} for name, value in pairs])


def _in_order(rows: list[dict]) -> list[dict]:
    """Locust's tables sort their rows by the `name` field until a column head is clicked: make that
    field keep our order (it is not a shown column)."""
    return [{**row, "name": f"{index:03d}"} for index, row in enumerate(rows)]


def _blank(value):
    return "" if value is None else value


def _num(value) -> str:
    return "–" if value is None else f"{value:g}"
