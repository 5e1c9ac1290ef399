"""The report's `run` section and Locust's exception table, read from a Locust process (at quit, or for a
download mid-run)."""

from __future__ import annotations

import datetime as dt
import os
import sys

from locust.env import Environment
from locust.runners import MasterRunner

from config import redact_url
from locust_adapters import internals
from locust_adapters.run_clock import RunClock


def run_section(environment: Environment, clock: RunClock, settings, ended: dt.datetime) -> dict:
    """report.json `run` for this Locust process's run up to `ended` (at quit, or a download mid-run)."""
    from locust import __version__ as locust_version

    runner = environment.runner
    options = environment.parsed_options
    started = clock.started_at or ended
    command = os.environ.get("VOICELOAD_COMMAND") or " ".join(os.path.basename(sys.argv[0]).split() + sys.argv[1:])
    return {
        "id": (getattr(options, "run_id", "") or started.strftime("%Y%m%d-%H%M%S") + "-locust"),
        "started_at": started.isoformat(timespec="seconds"),
        "ended_at": ended.isoformat(timespec="seconds"),
        "duration_s": round(max(0.0, (ended - started).total_seconds()), 1),
        "suite": (getattr(options, "suite", "") or None) if options else None,
        "test_type": None,
        "host": redact_url(environment.host or ""),
        "profile": settings.profile,
        "workers": max(clock.workers, runner.worker_count) if isinstance(runner, MasterRunner) else 0,
        "users": max((p["users"] for p in clock.timeline), default=runner.user_count),
        "shape": type(environment.shape_class).__name__ if environment.shape_class else None,
        "command": command,
        "interrupted": False,
        "locust_version": locust_version,
        "workers_lost": list(clock.workers_lost),
    }


def locust_errors(runner) -> list[dict]:
    """Locust's own exception table as report errors."""
    return [{"kind": "exception", "message": message[:300], "count": count}
            for message, count in internals.exceptions(runner)]
