"""Wires the exact-sample recorder into a Locust process, whatever its role.

- local runner / worker: every request event is recorded exactly; CPU samples are kept.
- worker: each report to the master carries a drain of the recorder.
- master: absorbs the drains, so it holds every worker's samples.
- master / local: keeps a timeline and writes the run's reports when Locust quits.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from metrics.recorder import RECORDER, TIMELINE_METRICS

log = logging.getLogger("voiceload")
TIMELINE_INTERVAL_S = 5.0


class RunClock:
    """Wall-clock bounds of the test, for the report."""

    def __init__(self) -> None:
        self.started_at: dt.datetime | None = None
        self.ended_at: dt.datetime | None = None
        self.started_perf: float | None = None
        self.timeline: list[dict] = []


def install(environment: Environment, on_quit) -> RunClock:
    """Register the listeners for this process's role; `on_quit(environment, clock)` writes reports."""
    runner = environment.runner
    clock = RunClock()
    is_master = isinstance(runner, MasterRunner)
    is_worker = isinstance(runner, WorkerRunner)

    if not is_master:
        @environment.events.request.add_listener
        def _record_request(request_type, name, response_time, exception=None, **_kw):
            RECORDER.record_request(request_type, name, float(response_time or 0.0), exception is not None)
            if exception is not None and request_type in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                RECORDER.error("http", f"{request_type} {name}: {exception}")

        @environment.events.usage_monitor.add_listener
        def _cpu(environment, cpu_usage, memory_usage, **_kw):
            RECORDER.cpu_samples.append(float(cpu_usage))

    if is_worker:
        @environment.events.report_to_master.add_listener
        def _ship(client_id, data, **_kw):
            data["voiceload"] = RECORDER.drain()
        return clock

    if is_master:
        @environment.events.worker_report.add_listener
        def _absorb(client_id, data, **_kw):
            if "voiceload" in data:
                RECORDER.absorb(data["voiceload"])

    @environment.events.test_start.add_listener
    def _started(environment, **_kw):
        if clock.started_at is None:
            clock.started_at = dt.datetime.now(dt.timezone.utc)
            clock.started_perf = time.perf_counter()
            gevent.spawn(_timeline_loop, environment, clock)

    @environment.events.test_stop.add_listener
    def _stopped(environment, **_kw):
        clock.ended_at = dt.datetime.now(dt.timezone.utc)

    @environment.events.quit.add_listener
    def _quit(exit_code, **_kw):
        try:
            on_quit(environment, clock)
        except Exception:  # noqa: BLE001 - never lose the process exit to a report bug, but say so loudly
            log.exception("voiceload: writing the report failed")
            sys.stderr.flush()

    return clock


def _timeline_loop(environment: Environment, clock: RunClock) -> None:
    """Every few seconds: users, throughput, failures and voice_loop p95 of the last interval."""
    while True:
        gevent.sleep(TIMELINE_INTERVAL_S)
        runner = environment.runner
        if runner is None or runner.state in ("stopped", "quitting"):
            return
        window = RECORDER.take_window()
        point = {
            "t_s": round(time.perf_counter() - (clock.started_perf or time.perf_counter()), 1),
            "users": runner.user_count,
            "rps": round(runner.stats.total.current_rps, 2),
            "failures_per_s": round(runner.stats.total.current_fail_per_sec, 2),
        }
        for name in TIMELINE_METRICS:
            histogram = window.get(name)
            point[f"{name}_p95"] = histogram.percentile(95) if histogram and histogram.total else None
        clock.timeline.append(point)
