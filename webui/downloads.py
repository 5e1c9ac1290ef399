"""report.json / report.html / junit.xml of the run in progress (or just ended), built on demand from the
exact samples with the same code that writes them at quit (reporting.report.build_report and renderers)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from locust.env import Environment
from locust.runners import MasterRunner

from config import redact_url
from metrics.recorder import RECORDER, MetricsRecorder
from reporting.html_report import render_html
from reporting.junit import render_junit
from reporting.report import build_report
from users.runtime import get_settings

IN_PROGRESS_STATES = ("spawning", "running", "stopping", "cleanup")


def run_section(environment: Environment, clock) -> dict:
    """The report's `run` section, as locustfile.py writes it at quit, for the run as it stands now."""
    runner = environment.runner
    options = environment.parsed_options
    settings = get_settings()
    now = dt.datetime.now(dt.timezone.utc)
    started = clock.started_at or now
    in_progress = runner.state in IN_PROGRESS_STATES
    ended = now if in_progress or clock.ended_at is None else clock.ended_at
    duration = max(0.0, (ended - started).total_seconds())
    run_id = (getattr(options, "run_id", "") or started.strftime("%Y%m%d-%H%M%S") + "-locust")
    try:
        from locust import __version__ as locust_version
    except ImportError:  # pragma: no cover - Locust always has it
        locust_version = None
    return {
        "id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "ended_at": ended.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "suite": (getattr(options, "suite", "") or None) if options else None,
        "test_type": None,
        "host": redact_url(environment.host or ""),
        "profile": settings.profile,
        "workers": max(clock.workers, runner.worker_count) if isinstance(runner, MasterRunner) else 0,
        "users": max((p["users"] for p in clock.timeline), default=runner.user_count),
        "shape": type(environment.shape_class).__name__ if environment.shape_class else None,
        "command": os.environ.get("VOICELOAD_COMMAND") or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
        "interrupted": False,
        "in_progress": in_progress,
        "locust_version": locust_version,
        "workers_lost": list(clock.workers_lost),
        "source": "web UI download",
    }


def current_report(environment: Environment, clock, recorder: MetricsRecorder = RECORDER) -> dict:
    runner = environment.runner
    exceptions = [{"kind": "exception", "message": e["msg"][:300], "count": e["count"]} for e in runner.exceptions.values()]
    run = run_section(environment, clock)
    report = build_report(recorder, get_settings(), run, list(clock.timeline), exceptions, phase_log=list(clock.phases))
    if run["in_progress"]:
        report["summary"]["messages"].insert(0, "run in progress: these figures cover the samples so far")
    return report


def render(name: str, report: dict) -> tuple[str, str]:
    """(body, mimetype) of one of the report files."""
    if name == "report.json":
        return json.dumps(report, indent=2, default=str) + "\n", "application/json"
    if name == "report.html":
        return render_html(report), "text/html"
    if name == "junit.xml":
        return render_junit(report), "application/xml"
    raise KeyError(name)
