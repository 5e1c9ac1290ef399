"""One run out of its groups: merge each group's exact samples into the run's report, and join
their Locust CSVs and logs into the run folder.

Each group's Locust process leaves `<run>/<group>/samples.json` (its exact histograms, counters,
errors, timeline) beside its own report files; the run's report is built from the merged samples,
so its percentiles are exact over every group, as if one process had recorded them all.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from metrics.recorder import PHASE_COUNTERS, MetricsRecorder
from orchestrator.locust_run import CSV_NAMES
from metrics.histogram import LatencyHistogram
from reporting.report import build_report, success_rates

SAMPLES_FILE = "samples.json"
TIMELINE_BIN_S = 5.0


@dataclass
class GroupOutcome:
    name: str
    exit_code: int | None
    interrupted: bool
    run_time_s: int
    users: int
    as_phase: bool = False  # a scenario of a plan: the whole group is one phase of the report


def merge_timelines(timelines: list[tuple[float, list[dict]]], bin_s: float = TIMELINE_BIN_S) -> list[dict]:
    """(offset of the group's start from the run's start in s, its points) -> one timeline: points
    falling in the same bin add their users, rps and failures; voice_loop p95 takes the worst."""
    bins: dict[float, dict] = {}
    for offset, points in timelines:
        for point in points:
            t = round((offset + point["t_s"]) / bin_s) * bin_s
            merged = bins.setdefault(t, {"t_s": t, "users": 0, "rps": 0.0, "failures_per_s": 0.0})
            for key, value in point.items():
                if key == "t_s" or value is None:
                    continue
                if key in ("users", "rps", "failures_per_s"):
                    merged[key] = round(merged[key] + value, 2)
                else:
                    merged[key] = value if merged.get(key) is None else max(merged[key], value)
    return [bins[t] for t in sorted(bins)]


def _shift(seconds: float | None, offset: float) -> float | None:
    return None if seconds is None else round(seconds + offset, 2)


def _parse_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def merge_groups(run_dir: Path, outcomes: list[GroupOutcome], settings: Settings, run: dict) -> dict:
    """Build the run's report from its groups' samples. `run` holds the run-level fields (id, suite,
    host, command, started_at, ended_at, ...); times and users come from the groups that left samples.
    When none did (their Locust was killed), the report is empty, marked interrupted, and fails."""
    recorder = MetricsRecorder()
    group_runs, group_samples, timelines, phase_logs, locust_errors, missing = [], [], [], [], [], []
    for outcome in outcomes:
        path = run_dir / outcome.name / SAMPLES_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            missing.append(outcome)
            continue
        if outcome.as_phase:
            as_scenario_phase(outcome.name, data)
        recorder.absorb(data["samples"])
        group_samples.append(data["samples"])
        group_runs.append((outcome, data["run"]))
        timelines.append(data.get("timeline") or [])
        phase_logs.append(data.get("phases") or [])
        locust_errors += data.get("locust_errors") or []
    starts = [_parse_time(r["started_at"]) for _, r in group_runs]
    ends = [_parse_time(r["ended_at"]) for _, r in group_runs]
    started, ended = min(starts or [_parse_time(run["started_at"])]), max(ends or [_parse_time(run["ended_at"])])
    run = {**run,
           "started_at": started.isoformat(timespec="seconds"), "ended_at": ended.isoformat(timespec="seconds"),
           "duration_s": round((ended - started).total_seconds(), 1),
           "workers": max((r.get("workers") or 0 for _, r in group_runs), default=0),
           "users": sum(r.get("users") or 0 for _, r in group_runs) if run.get("parallel")
           else max((r.get("users") or 0 for _, r in group_runs), default=0),
           "interrupted": any(o.interrupted or r.get("interrupted") for o, r in group_runs) or bool(missing),
           "locust_version": group_runs[0][1].get("locust_version") if group_runs else None,
           "workers_lost": [{**lost, "group": o.name} for o, r in group_runs for lost in r.get("workers_lost") or []],
           "groups": [{"name": o.name, "users": o.users, "run_time_s": o.run_time_s, "started_at": r["started_at"],
                       "duration_s": r["duration_s"], "exit_code": o.exit_code, **group_success(samples)}
                      for (o, r), samples in zip(group_runs, group_samples)]
           + [{"name": o.name, "users": o.users, "run_time_s": o.run_time_s, "started_at": None, "duration_s": None,
               "exit_code": o.exit_code} for o in missing]}
    timeline = merge_timelines([((s - started).total_seconds(), points) for s, points in zip(starts, timelines)])
    phase_log = [{**phase, "start_s": _shift(phase.get("start_s"), offset), "end_s": _shift(phase.get("end_s"), offset)}
                 for offset, phases in zip(((s - started).total_seconds() for s in starts), phase_logs) for phase in phases]
    report = build_report(recorder, settings, run, timeline, locust_errors, phase_log=phase_log)
    _group_request_rates(report, run_dir, [o.name for o, _ in group_runs])
    for outcome in missing:
        report["summary"]["messages"].append(
            f"group {outcome.name} left no samples (Locust exit code {outcome.exit_code}); see {outcome.name}/locust.log")
    return report


def as_scenario_phase(name: str, data: dict) -> None:
    """A plan's scenario is a phase of the run under its own name, spanning the whole group; the phases of a
    shape it ran become "<scenario> · <phase>" (two scenarios may run shapes with phases of the same name)."""
    samples = data["samples"]
    requests, failures = request_totals(samples)
    whole = {"metrics": samples.get("metrics", {}), "metric_failures": samples.get("metric_failures", {}),
             "requests": requests, "failures": failures,
             "counters": {k: v for k, v in samples.get("counters", {}).items() if k in PHASE_COUNTERS}}
    samples["phases"] = {name: whole, **{f"{name} · {phase}": wire for phase, wire in (samples.get("phases") or {}).items()}}
    data["phases"] = ([{"name": name, "start_s": 0.0, "end_s": data["run"].get("duration_s"), "users": data["run"].get("users")}]
                      + [{**phase, "name": f"{name} · {phase['name']}"} for phase in data.get("phases") or []])


def request_totals(samples: dict) -> tuple[int, int]:
    """(requests, failed requests) in a group's shipped samples."""
    return (sum(LatencyHistogram.from_wire(h).total for h in samples.get("requests", {}).values()),
            sum(samples.get("request_failures", {}).values()))


def group_success(samples: dict) -> dict:
    """A group's own success rate (calls, or requests in a group that placed none) from its shipped samples."""
    requests, failures = request_totals(samples)
    counters = samples.get("counters", {})
    rates = success_rates(counters, requests, failures)
    return {"success_rate": rates["success_rate"], "success_basis": rates["success_basis"],
            "calls_ended": counters.get("calls_completed", 0) + counters.get("calls_failed", 0)}


def _group_request_rates(report: dict, run_dir: Path, names: list[str]) -> None:
    """Requests per second over the time each group ran (summed over groups), not over the whole
    run: one after another, a group's requests would otherwise be spread over the others' time."""
    rates: dict[tuple[str, str], float] = {}
    for name in names:
        try:
            rows = json.loads((run_dir / name / "report.json").read_text())["requests"]
        except (OSError, ValueError, KeyError):
            continue
        for row in rows:
            if row.get("rps") is not None:
                rates[(row["type"], row["name"])] = rates.get((row["type"], row["name"]), 0.0) + row["rps"]
    for row in report["requests"]:
        if (row["type"], row["name"]) in rates:
            row["rps"] = round(rates[(row["type"], row["name"])], 3)


def join_group_files(run_dir: Path, names: list[str]) -> None:
    """The run folder's Locust CSVs and locust.log: each group's, one after another (every group's
    CSV rows keep its own Aggregated row; the per-group files stay in <run>/<group>/)."""
    for csv_name in CSV_NAMES.values():
        header, rows = None, []
        for name in names:
            path = run_dir / name / csv_name
            if not path.exists():
                continue
            lines = path.read_text().splitlines(keepends=True)
            if lines:
                header = header or lines[0]
                rows += lines[1:]
        if header is not None:
            (run_dir / csv_name).write_text(header + "".join(rows))
    with open(run_dir / "locust.log", "w") as joined:
        for name in names:
            path = run_dir / name / "locust.log"
            if path.exists():
                joined.write(f"===== group {name} =====\n")
                joined.write(path.read_text(errors="replace"))
