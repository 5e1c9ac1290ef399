"""Wires the exact-sample recorder into a Locust process, whatever its role.

- local runner / worker: every request event is recorded exactly; CPU samples are kept.
- worker: each report to the master carries a drain of the recorder.
- master: absorbs the drains, so it holds every worker's samples.
- master / local: keeps a timeline and writes the run's reports when Locust quits.

The recorder and the clock are the run context's, `environment.voiceload` (users/run_context.py attaches it
before `install` and starts it afresh at every test_start, on every runner kind); the recorder is looked up
there at each use, as each run has its own.
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
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from metrics.recorder import TIMELINE_METRICS
from voice.gc_tuning import tune_gc_for_realtime

log = logging.getLogger("voiceload")
TIMELINE_INTERVAL_S = 5.0
PHASE_POLL_S = 0.25
PHASE_MESSAGE = "voiceload_phase"


class RunClock:
    """Wall-clock bounds of the test, for the report."""

    def __init__(self) -> None:
        self.planned_run_time: float | None = None
        self.started_at: dt.datetime | None = None
        self.ended_at: dt.datetime | None = None
        self.started_perf: float | None = None
        self.workers = 0  # most workers seen during the run
        self.timeline: list[dict] = []
        self.phases: list[dict] = []  # the load shape's phases: name, start_s, end_s, users
        self.workers_lost: list[dict] = []  # workers that stopped sending heartbeats: id, lost_at_s
        self.announced_phase: str | None = None  # the phase samples are being filed under

    def reset(self) -> None:
        """Forget the previous run (the web UI can start several in one session)."""
        planned = self.planned_run_time
        self.__init__()
        self.planned_run_time = planned


PHASE_REPORT_DELAY_S = 3.5  # a master hears of a phase's last worker samples within Locust's report interval (3 s)


def install(environment: Environment, on_quit, on_phase_end=None) -> RunClock:
    """Register the listeners for this process's role; `on_quit(environment, clock)` writes reports;
    `on_phase_end(environment, phase)` runs once each phase of the load shape has its samples (master/local)."""
    runner = environment.runner
    context = getattr(environment, "voiceload", None)
    if context is None:
        raise RuntimeError("metrics.locust_plugin.install: attach a run context first (users.run_context.attach)")
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

        def _phase(msg, **_kw):
            context.recorder.phase = msg.data

        runner.register_message(PHASE_MESSAGE, _phase)

        @environment.events.test_stop.add_listener
        def _final_report(environment, **_kw):
            # Sent before this worker tells the master it has stopped; the master ignores the
            # reports of workers that have stopped, so samples from the last seconds would be lost.
            environment.runner._send_stats()

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
                gevent.spawn(_watch_workers, environment.runner, clock)
            if is_master and clock.planned_run_time and options.run_time is None:
                gevent.spawn_later(clock.planned_run_time, _stop_workers_then_quit, environment.runner)
            if is_master and options is not None and options.headless and environment.shape_class is not None:
                _end_shape_gracefully(environment)

    @environment.events.test_start.add_listener
    def _phases(environment, **_kw):  # every start: the web UI can run a shape again, or another one
        if environment.shape_class is not None and not isinstance(environment.runner, WorkerRunner):
            _announce_phase_at_tick(environment, clock, on_phase_end)
            gevent.spawn(_follow_phases, environment, clock, on_phase_end)

    @environment.events.test_stop.add_listener
    def _stopped(environment, **_kw):
        clock.ended_at = dt.datetime.now(dt.timezone.utc)
        if clock.phases and clock.phases[-1]["end_s"] is None:
            clock.phases[-1]["end_s"] = _elapsed(clock)

    @environment.events.quit.add_listener
    def _quit(exit_code, **_kw):
        try:
            on_quit(environment, clock)
        except Exception:  # noqa: BLE001 - never lose the process exit to a report bug, but say so loudly
            log.exception("voiceload: writing the report failed")
            sys.stderr.flush()

    return clock


def run_section(environment: Environment, clock: RunClock, settings, ended: dt.datetime) -> dict:
    """report.json `run` for this Locust process's run up to `ended` (at quit, or a download mid-run)."""
    from locust import __version__ as locust_version

    from config import redact_url

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
    return [{"kind": "exception", "message": e["msg"][:300], "count": e["count"]} for e in runner.exceptions.values()]


def _stop_workers_then_quit(runner) -> None:
    log.info("voiceload: run time reached; stopping workers and collecting their last samples")
    _stop_workers(runner)
    runner.quit()


def _stop_workers(runner) -> None:
    """Stop every worker gracefully, wait for their last reports, then tell them to quit."""
    workers = [client.id for client in runner.clients.all]
    runner.stop()  # sends stop to every worker and waits until their users have finished
    gevent.sleep(0.5)
    for worker in workers:  # stopped workers are no longer in runner.clients, so quit them by id
        runner.server.send_to_client(Message("quit", None, worker))


def _elapsed(clock: RunClock) -> float:
    return round(time.perf_counter() - (clock.started_perf or time.perf_counter()), 2)


def _end_shape_gracefully(environment: Environment) -> None:
    """Headless, Locust quits the master the moment its shape ends, before the workers' last samples
    arrive. Instead, when the shape ends, stop the workers gracefully first (inside the shape's greenlet,
    so Locust's own quit follows only then)."""
    shape = environment.shape_class
    tick = shape.tick

    def graceful_tick():
        current = tick()
        if current is None and environment.runner.state not in ("stopped", "quitting"):
            _stop_workers(environment.runner)
        return current

    shape.tick = graceful_tick


def _announce(runner, clock: RunClock, phase: str | None) -> None:
    """File the samples from now on under `phase`: here, or (master) on every worker."""
    if phase == clock.announced_phase:
        return
    clock.announced_phase = phase
    if isinstance(runner, MasterRunner):
        runner.send_message(PHASE_MESSAGE, phase)
    else:
        runner.environment.voiceload.recorder.phase = phase


def _announce_phase_at_tick(environment: Environment, clock: RunClock, on_phase_end=None) -> None:
    """Announce a new phase in the shape's own tick, before the users it asks for are spawned, so the
    calls they start count in their phase (the follower loop notices a change only up to 0.25 s later).
    A local runner has every sample at hand: it runs `on_phase_end` for the phase that just ended there,
    before the next one starts, and ends the shape at once if that cut it short (shapes.base.end_now)."""
    shape = environment.shape_class
    tick = shape.tick
    if getattr(tick, "announces_phase", False):
        return
    local = not isinstance(environment.runner, MasterRunner)

    def tick_and_announce():
        current = tick()
        phase, ended = getattr(shape, "phase", None), clock.announced_phase
        if local and on_phase_end is not None and ended is not None and phase != ended:
            on_phase_end(environment, ended)
            if getattr(shape, "ended_early", None):
                current = phase = shape.phase = None
        _announce(environment.runner, clock, phase)
        return current

    tick_and_announce.announces_phase = True
    shape.tick = tick_and_announce


def _same_run(clock: RunClock, started_perf: float | None) -> bool:
    """False once the web UI has started another run: a loop of the previous one must end."""
    return clock.started_perf == started_perf


def _watch_workers(runner: MasterRunner, clock: RunClock) -> None:
    """Note every worker Locust marks missing (no heartbeat for ~3 s: killed, crashed, cut off)."""
    noted: set[str] = set()
    run = clock.started_perf
    while runner.state not in ("stopped", "quitting") and _same_run(clock, run):
        for client in runner.clients.missing:
            if client.id not in noted:
                noted.add(client.id)
                clock.workers_lost.append({"id": client.id, "lost_at_s": _elapsed(clock)})
                log.warning("voiceload: worker %s stopped sending heartbeats; the run goes on with the others", client.id)
        gevent.sleep(1.0)


def _follow_phases(environment: Environment, clock: RunClock, on_phase_end=None) -> None:
    """Follow the load shape's `phase`: log each phase's span and peak users, and tell every process
    that records samples (this one, or the workers) so they file them under it. On a master, when a phase
    ends, `on_phase_end(environment, phase)` runs once the workers' last reports of it are in."""
    runner = environment.runner
    current = None
    run = clock.started_perf
    master = isinstance(runner, MasterRunner)
    while runner.state not in ("stopped", "quitting") and _same_run(clock, run):
        phase = getattr(environment.shape_class, "phase", None)
        if phase != current:
            if master and current is not None and phase is not None and on_phase_end is not None:
                gevent.spawn_later(PHASE_REPORT_DELAY_S, on_phase_end, environment, current)  # once workers reported
            if clock.phases and clock.phases[-1]["end_s"] is None:
                clock.phases[-1]["end_s"] = _elapsed(clock)
            if phase is not None:
                clock.phases.append({"name": phase, "start_s": _elapsed(clock), "end_s": None, "users": 0})
            current = phase
            _announce(runner, clock, phase)
        if clock.phases and clock.phases[-1]["end_s"] is None:
            clock.phases[-1]["users"] = max(clock.phases[-1]["users"], runner.user_count)
        gevent.sleep(PHASE_POLL_S)


def _timeline_loop(environment: Environment, clock: RunClock) -> None:
    """Every few seconds: users, throughput, failures and voice_loop p95 of the last interval."""
    run = clock.started_perf
    while True:
        gevent.sleep(TIMELINE_INTERVAL_S)
        runner = environment.runner
        if runner is None or runner.state in ("stopped", "quitting") or not _same_run(clock, run):
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
