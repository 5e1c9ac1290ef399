"""Render a ``voiceload.report/1`` dict as one self-contained HTML page.

No external CSS, JS, fonts or images: styles are inline and the charts are inline SVG
built by :mod:`reporting.svg_chart`. The page is rendered with jinja2 with autoescaping
on, so names, messages and errors from the report are always treated as text.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from metric_registry import charted, meaning, unit
from reporting.formatting import (
    DASH,
    as_float,
    as_list,
    as_mapping,
    as_records,
    fmt_bool,
    fmt_compact,
    fmt_groups,
    fmt_int,
    fmt_num,
    fmt_pct,
    generator_limits,
    slo_status,
    text,
    verdict_of,
)
from reporting.svg_chart import Reference, Series, line_chart

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "report.html.j2"

STATUS_MARKS = {"pass": "✓ pass", "miss": "⚠ miss", "fail": "✗ fail", "no_data": "– no data"}
_COLORS = {"users": "#2563eb", "rps": "#059669", "failures": "#dc2626", "voice": "#7c3aed"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: Mapping[str, Any]) -> str:
    """Render the report dict as a complete, self-contained HTML document."""
    return _environment().get_template(TEMPLATE_NAME).render(**build_view(report))


def build_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a report dict into display-ready strings for the template (pure, never raises on gaps)."""
    report = as_mapping(report)
    run = as_mapping(report.get("run"))
    summary = as_mapping(report.get("summary"))
    metrics = {str(k): as_mapping(v) for k, v in as_mapping(report.get("metrics")).items()}
    slo = as_records(report.get("slo"))
    verdict = verdict_of(summary)
    return {
        "run_id": text(run.get("id")),
        "verdict": verdict,
        "verdict_label": verdict.upper(),
        "run_rows": _run_rows(run),
        "command": text(run.get("command")) if run.get("command") else "",
        "interrupted": run.get("interrupted") is True,
        "generator_unhealthy": summary.get("generator_healthy") is False,
        "generator_detail": _generator_detail(as_mapping(summary.get("generator")), as_mapping(report.get("thresholds"))),
        "figures": _figures(summary),
        "messages": [text(m) for m in as_list(summary.get("messages"))],
        "slo_rows": [_slo_row(entry) for entry in slo if slo_status(entry) != "no_data"],
        "not_measured": list(dict.fromkeys(text(e.get("metric")) for e in slo if slo_status(e) == "no_data")),
        "capability_rows": [{"name": text(c.get("name")), "status": text(c.get("status")), "why": text(c.get("why"))}
                            for c in as_records(report.get("capabilities"))],
        "metric_rows": [_metric_row(name, m) for name, m in metrics.items()],
        "charts": _charts(as_records(report.get("timeline")), slo) + _capacity_chart(as_mapping(report.get("capacity")), slo),
        "request_rows": _request_rows(as_records(report.get("requests"))),
        "phase_rows": [_phase_row(p) for p in as_records(report.get("phases"))],
        "resources": _resources(as_mapping(report.get("resources"))),
        "bottlenecks": [text(b) for b in as_list(as_mapping(report.get("resources")).get("bottlenecks"))],
        "error_rows": [
            {"kind": text(e.get("kind")), "message": text(e.get("message")), "count": fmt_int(e.get("count"))}
            for e in as_records(report.get("errors"))
        ],
        "schema": text(report.get("schema")),
    }


def _run_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    duration = as_float(run.get("duration_s"))
    return [
        ("suite", text(run.get("suite"))),
        ("test type", text(run.get("test_type"))),
        ("profile", text(run.get("profile"))),
        ("host", text(run.get("host"))),
        ("duration", DASH if duration is None else f"{duration:.1f} s"),
        ("users", fmt_int(run.get("users"))),
        ("workers", fmt_int(run.get("workers"))),
        ("shape", text(run.get("shape"))),
        ("groups", fmt_groups(run)),
        ("started", text(run.get("started_at"))),
        ("ended", text(run.get("ended_at"))),
        ("locust", text(run.get("locust_version"))),
    ]


def _generator_detail(generator: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
    lateness_limit, cpu_limit = generator_limits(thresholds)
    parts = []
    if "frame_lateness_p99_ms" in generator:
        parts.append(f"frame send lateness p99 {fmt_num(generator.get('frame_lateness_p99_ms'))} ms "
                     f"(limit {fmt_compact(lateness_limit)} ms)")
    if "cpu_max_percent" in generator:
        parts.append(f"CPU max {fmt_num(generator.get('cpu_max_percent'))}% (limit {fmt_compact(cpu_limit)}%)")
    if "cpu_over_90_fraction" in generator:
        fraction = as_float(generator.get("cpu_over_90_fraction"))
        parts.append(f"time above {fmt_compact(cpu_limit)}% CPU {DASH if fraction is None else f'{fraction * 100:.1f}%'}")
    return "; ".join(parts)


def _figures(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (_success_label(summary), fmt_pct(summary.get("success_rate"))),
        ("request error rate", fmt_pct(summary.get("error_rate"))),
        ("requests", fmt_int(summary.get("requests"))),
        ("failures", fmt_int(summary.get("failures"))),
        ("calls started", fmt_int(summary.get("calls_started"))),
        ("calls completed", fmt_int(summary.get("calls_completed"))),
        ("calls failed", fmt_int(summary.get("calls_failed"))),
        ("generator healthy", fmt_bool(summary.get("generator_healthy"))),
    ]


def _success_label(summary: Mapping[str, Any]) -> str:
    basis = summary.get("success_basis")
    return {"calls": "call success rate", "requests": "request success rate (no calls)"}.get(basis, "success rate")


def _slo_row(entry: Mapping[str, Any]) -> dict[str, str]:
    status = slo_status(entry)
    observed, target = as_float(entry.get("observed")), as_float(entry.get("target"))
    margin = DASH
    if observed is not None and target:
        margin = f"{(observed - target) / abs(target) * 100:+.1f}%"
    return {
        "metric": text(entry.get("metric")),
        "stat": text(entry.get("stat")),
        "target": f"{text(entry.get('op'))} {fmt_num(entry.get('target'))}",
        "observed": fmt_num(entry.get("observed")),
        "margin": margin,
        "status": status,
        "mark": STATUS_MARKS[status],
        "description": " · ".join(text(entry.get(key)) for key in ("note", "description") if entry.get(key)),
    }


def _metric_row(name: str, m: Mapping[str, Any]) -> dict[str, str]:
    """A metric's row; its meaning (and its unit, if the report has none) from metric_registry."""
    row = {"name": text(name), "group": text(m.get("group")), "unit": text(m.get("unit") or unit(name)),
           "meaning": meaning(name)}
    row["count"] = fmt_int(m.get("count"))
    for key in ("mean", "min", "p50", "p90", "p95", "p99", "max"):
        row[key] = fmt_num(m.get(key))
    return row


def _request_rows(requests: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = [_request_row(r) for r in requests]
    if requests and not any(str(r.get("name", "")).lower() == "aggregated" for r in requests):
        count = sum(as_float(r.get("count")) or 0 for r in requests)
        failures = sum(as_float(r.get("failures")) or 0 for r in requests)
        rps = sum(as_float(r.get("rps")) or 0 for r in requests)
        total = {"type": "", "name": "Aggregated", "count": count, "failures": failures, "rps": rps}
        rows.append({**_request_row(total), "aggregate": "yes"})
    return rows


def _request_row(r: Mapping[str, Any]) -> dict[str, str]:
    count, failures = as_float(r.get("count")), as_float(r.get("failures"))
    fail_pct = fmt_pct(failures / count * 100) if count and failures is not None else DASH
    row = {
        "type": "" if r.get("type") in (None, "") else str(r.get("type")),
        "name": text(r.get("name")),
        "count": fmt_int(r.get("count")),
        "failures": fmt_int(r.get("failures")),
        "fail_pct": fail_pct,
        "rps": fmt_num(r.get("rps")),
        "aggregate": "",
        "has_failures": "yes" if failures else "",
    }
    for key in ("p50", "p95", "p99", "max"):
        row[key] = fmt_num(r.get(key))
    return row


def _phase_row(p: Mapping[str, Any]) -> dict[str, str]:
    return {
        "name": text(p.get("name")),
        "start": fmt_num(p.get("start_s")),
        "end": fmt_num(p.get("end_s")),
        "users": fmt_int(p.get("users")),
        "requests": fmt_int(p.get("requests")),
        "success_rate": fmt_pct(p.get("success_rate")),
        "voice_loop_p50": fmt_num(p.get("voice_loop_p50")),
        "voice_loop_p95": fmt_num(p.get("voice_loop_p95")),
    }


def _resources(resources: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for side in ("target", "generator"):
        peaks = as_mapping(resources.get(side))
        rows = []
        for key, value in peaks.items():  # target peaks are per process: {"redis": {...}, "target": {...}}
            if isinstance(value, Mapping):
                rows += [(f"{key} · {k}", _scalar(v)) for k, v in value.items()]
            else:
                rows.append((str(key), _scalar(value)))
        out.append({"name": side, "rows": rows})
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, bool):
        return fmt_bool(value)
    return fmt_num(value)


def _capacity_chart(capacity: Mapping[str, Any], slo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--find-capacity: voice_loop p95 and success rate per step, against concurrent calls."""
    steps = as_records(capacity.get("steps"))
    if not steps:
        return []
    reference = _p95_reference(slo, "voice_loop")
    series = [Series("voice_loop p95", [(s.get("calls"), s.get("voice_loop_p95")) for s in steps], _COLORS["voice"])]
    title = f"Capacity: {fmt_int(capacity.get('capacity_calls'))} calls held every SLO"
    svg = line_chart(series, title=title, x_label="concurrent calls", y_label="ms", reference=reference)
    return [{"title": title, "svg": Markup(svg) if svg else None}]


def _p95_reference(slo: list[dict[str, Any]], name: str) -> Reference | None:
    """The metric's p95 SLO target as a chart's reference line, if it has one."""
    target = next(
        (as_float(s.get("target")) for s in slo
         if s.get("metric") == name and s.get("stat") == "p95" and as_float(s.get("target")) is not None),
        None,
    )
    return Reference(f"SLO {fmt_compact(target)} {unit(name)}", target) if target is not None else None


def _charts(timeline: list[dict[str, Any]], slo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Users, throughput, then each charted metric's p95 (metric_registry) over time; ``svg`` is None
    when the chart has no data."""
    def points(key: str) -> list[tuple[Any, Any]]:
        return [(row.get("t_s"), row.get(key)) for row in timeline]

    specs = [
        ("Users over time", [Series("users", points("users"), _COLORS["users"])], "users", None),
        (
            "Throughput and failures",
            [Series("rps", points("rps"), _COLORS["rps"]),
             Series("failures/s", points("failures_per_s"), _COLORS["failures"])],
            "per second",
            None,
        ),
        *((f"{name} p95 over time", [Series(f"{name} p95", points(f"{name}_p95"), _COLORS["voice"])],
           unit(name), _p95_reference(slo, name)) for name in charted()),
    ]
    charts = []
    for title, series, y_label, ref in specs:
        svg = line_chart(series, title=title, x_label="time since start (s)", y_label=y_label, reference=ref)
        charts.append({"title": title, "svg": Markup(svg) if svg else None})
    return charts
