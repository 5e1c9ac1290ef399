"""Wires the exact-sample recorder into a Locust process, whatever its role.

- local runner / worker: every request event is recorded exactly; CPU samples are kept.
- worker: each report to the master carries a drain of the recorder.
- master: absorbs the drains, so it holds every worker's samples.
- master / local: keeps a timeline and writes the run's reports when Locust quits.

The recorder and the clock are the run context's, `environment.voiceload` (users/run_context.py attaches it
before `install` and starts it afresh at every test_start, on every runner kind); the recorder is looked up
there at each use, as each run has its own. The load shape's phases are followed in phases.py, a master's
workers in workers.py; the clock is run_clock.py's.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import os
import sys
import time

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from locust_adapters import internals
from locust_adapters.phases import announce_phase_at_tick, follow_phases, receive_phases
from locust_adapters.run_clock import RunClock, elapsed, same_run
from locust_adapters.workers import end_shape_gracefully, stop_workers_then_quit, watch_workers
from metrics.recorder import TIMELINE_METRICS
from voice.gc_tuning import tune_gc_for_realtime

log = logging.getLogger("voiceload")
TIMELINE_INTERVAL_S = 5.0


def install(environment: Environment, on_quit, on_phase_end=None) -> RunClock:
    """Register the listeners for this process's role; `on_quit(environment, clock)` writes reports;
    `on_phase_end(environment, phase)` runs once each phase of the load shape has its samples (master/local)."""
    runner = environment.runner
    context = getattr(environment, "voiceload", None)
    if context is None:
        raise RuntimeError("locust_adapters.plugin.install: attach a run context first (users.run_context.attach)")
    internals.check_locust_version()  # one warning line if this Locust is not the one internals.py was written for
    clock = context.clock
    is_master = isinstance(runner, MasterRunner)
    is_worker = isinstance(runner, WorkerRunner)

    if not is_master:
        @environment.events.request.add_listener
        def _record_request(request_type, name, response_time, exception=None, **_kw):
            context.recorder.record_request(request_type, name, float(response_time or 0.0), exception is not None)
            if exception is not None and request_type in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                context.recorder.error("http", f"{request_type} {name}: {exception}")

        @environment.events.test_start.add_listener
        def _realtime_gc(environment, **_kw):
            # Locust's Runner.stop() logs its caller with inspect.stack(), whose first call maps every
            # loaded module to its file: ~150 ms with the SDKs loaded, during which no audio frame goes
            # out. Pay for it now, before the first frame, so the stop does not stall the callers.
            inspect.stack()
            tune_gc_for_realtime()

        @environment.events.usage_monitor.add_listener
        def _cpu(environment, cpu_usage, memory_usage, **_kw):
            context.recorder.cpu_samples.append(float(cpu_usage))

    if is_worker:
        dump_dir = os.environ.get("VOICELOAD_SAMPLE_DUMP_DIR")
        receive_phases(runner, context)

        @environment.events.test_stop.add_listener
        def _final_report(environment, **_kw):
            # Sent before this worker tells the master it has stopped; the master ignores the
            # reports of workers that have stopped, so samples from the last seconds would be lost.
            internals.send_report_now(environment.runner)

        @environment.events.report_to_master.add_listener
        def _ship(client_id, data, **_kw):
            data["voiceload"] = context.recorder.drain()
            if dump_dir:  # a copy of every shipment, so tests can check the master merged them exactly
                with open(os.path.join(dump_dir, f"worker-{os.getpid()}.jsonl"), "a") as dump:
                    dump.write(json.dumps(data["voiceload"]) + "\n")
        return clock

    options = environment.parsed_options
    clock.planned_run_time = getattr(options, "run_time", None)
    if is_master:
        @environment.events.worker_report.add_listener
        def _absorb(client_id, data, **_kw):
            if "voiceload" in data:
                context.recorder.absorb(data["voiceload"])

        if options is not None and options.headless and options.run_time:
            # Locust's own --run-time quits the master 0.5 s after telling workers to quit, while their
            # callers may still be finishing calls (--stop-timeout): their last samples would be lost.
            # Take over the timer: stop the workers gracefully, collect their last reports, then quit.
            options.run_time = None

    @environment.events.reset_stats.add_listener
    def _reset(**_kw):  # the web UI's RESET STATS: voice figures start afresh with Locust's own
        context.recorder.drain()

    @environment.events.test_start.add_listener
    def _started(environment, **_kw):  # the run context has just started afresh (a new recorder, a reset clock)
        if clock.started_at is None:
            clock.started_at = dt.datetime.now(dt.timezone.utc)
            clock.started_perf = time.perf_counter()
            clock.workers = getattr(environment.runner, "worker_count", 0)
            gevent.spawn(_timeline_loop, environment, clock)
            if is_master:
                gevent.spawn(watch_workers, environment.runner, clock)
            if is_master and clock.planned_run_time and options.run_time is None:
                gevent.spawn_later(clock.planned_run_time, stop_workers_then_quit, environment.runner)
            if is_master and options is not None and options.headless and environment.shape_class is not None:
                end_shape_gracefully(environment)

    @environment.events.test_start.add_listener
    def _phases(environment, **_kw):  # every start: the web UI can run a shape again, or another one
        if environment.shape_class is not None and not isinstance(environment.runner, WorkerRunner):
            announce_phase_at_tick(environment, clock, on_phase_end)
            gevent.spawn(follow_phases, environment, clock, on_phase_end)

    @environment.events.test_stop.add_listener
    def _stopped(environment, **_kw):
        clock.ended_at = dt.datetime.now(dt.timezone.utc)
        if clock.phases and clock.phases[-1]["end_s"] is None:
            clock.phases[-1]["end_s"] = elapsed(clock)

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
    run = clock.started_perf
    while True:
        gevent.sleep(TIMELINE_INTERVAL_S)
        runner = environment.runner
        if runner is None or runner.state in ("stopped", "quitting") or not same_run(clock, run):
            return
        clock.workers = max(clock.workers, getattr(runner, "worker_count", 0))
        window = environment.voiceload.recorder.take_window()
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
