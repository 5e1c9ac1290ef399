"""The run clock: wall-clock bounds of a Locust run, its timeline, load phases and lost workers, for the report.

One object per process (the run context's, `environment.voiceload.clock`; the listeners hold it), reset in
place at each start. Pure data: the listeners of locust_adapters/plugin.py, phases.py and workers.py fill it.
"""

from __future__ import annotations

import datetime as dt
import time


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


def elapsed(clock: RunClock) -> float:
    """Seconds since the run started (0 before it has)."""
    return round(time.perf_counter() - (clock.started_perf or time.perf_counter()), 2)


def same_run(clock: RunClock, started_perf: float | None) -> bool:
    """False once the web UI has started another run: a loop of the previous one must end."""
    return clock.started_perf == started_perf
