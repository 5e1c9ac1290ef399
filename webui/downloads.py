"""report.json / report.html / junit.xml of the run in progress (or just ended), built on demand from the
exact samples with the same code that writes them at quit (reporting.report.build_report and renderers)."""

from __future__ import annotations

import datetime as dt
import json

from locust.env import Environment

from locust_adapters import run_section as locust_run
from metrics.recorder import MetricsRecorder
from reporting.html_report import render_html
from reporting.junit import render_junit
from reporting.report import build_report
from users.run_context import context_of

IN_PROGRESS_STATES = ("spawning", "running", "stopping", "cleanup")


def run_section(environment: Environment, clock) -> dict:
    """The report's `run` section, as locustfile.py writes it at quit, for the run as it stands now."""
    now = dt.datetime.now(dt.timezone.utc)
    in_progress = environment.runner.state in IN_PROGRESS_STATES
    ended = now if in_progress or clock.ended_at is None else clock.ended_at
    return {**locust_run.run_section(environment, clock, context_of(environment).settings, ended), "in_progress": in_progress,
            "source": "web UI download"}


def current_report(environment: Environment, clock, recorder: MetricsRecorder | None = None) -> dict:
    """The run's report as it stands now, from its exact samples (the run context's, unless given)."""
    context = context_of(environment)
    recorder = context.recorder if recorder is None else recorder
    exceptions = locust_run.locust_errors(environment.runner)
    run = run_section(environment, clock)
    report = build_report(recorder, context.settings, run, list(clock.timeline), exceptions, phase_log=list(clock.phases))
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
