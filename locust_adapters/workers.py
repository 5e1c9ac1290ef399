"""A master's workers: stopped gracefully so their last samples arrive before the master quits, and
watched for the ones that stop sending heartbeats (run.workers_lost)."""

from __future__ import annotations

import logging

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from locust_adapters import internals
from locust_adapters.run_clock import RunClock, elapsed, same_run

log = logging.getLogger("voiceload")
WORKER_WATCH_S = 1.0


def stop_workers_then_quit(master: MasterRunner) -> None:
    log.info("voiceload: run time reached; stopping workers and collecting their last samples")
    stop_workers(master)
    master.quit()


def stop_workers(master: MasterRunner) -> None:
    """Stop every worker gracefully, wait for their last reports, then tell them to quit."""
    workers = internals.worker_ids(master)
    master.stop()  # sends stop to every worker and waits until their users have finished
    gevent.sleep(0.5)
    for worker in workers:  # stopped workers are no longer in the master's client list, so quit them by id
        internals.quit_worker(master, worker)


def end_shape_gracefully(environment: Environment) -> None:
    """Headless, Locust quits the master the moment its shape ends, before the workers' last samples
    arrive. Instead, when the shape ends, stop the workers gracefully first (inside the shape's greenlet,
    so Locust's own quit follows only then)."""

    def wrap(tick):
        def graceful_tick():
            current = tick()
            if current is None and environment.runner.state not in ("stopped", "quitting"):
                stop_workers(environment.runner)
            return current
        return graceful_tick

    internals.wrap_shape_tick(environment.shape_class, wrap, marker="stops_workers_at_end")


def watch_workers(master: MasterRunner, clock: RunClock) -> None:
    """Note every worker Locust marks missing (no heartbeat for ~3 s: killed, crashed, cut off)."""
    noted: set[str] = set()
    run = clock.started_perf
    while master.state not in ("stopped", "quitting") and same_run(clock, run):
        for worker in internals.missing_worker_ids(master):
            if worker not in noted:
                noted.add(worker)
                clock.workers_lost.append({"id": worker, "lost_at_s": elapsed(clock)})
                log.warning("voiceload: worker %s stopped sending heartbeats; the run goes on with the others", worker)
        gevent.sleep(WORKER_WATCH_S)
