"""Open-model load: one phone (or browser) caller of Locust starts calls on a Poisson schedule
(shapes/arrivals.py), each in its own greenlet, whatever the agent's speed.

A call due while `max_concurrent` calls are still running is not placed: it is counted
`calls_dropped_at_cap`; a call whose setup failed is counted `calls_dropped_at_setup` (and failed).
Together they are the report's summary.calls_dropped, so a slow agent cannot hide by slowing its own load.
The schedule travels as JSON in the callers' --arrivals option (run_load_tests.py writes it from a
plan's `arrivals:`), e.g. {"rate": 2, "per": "s", "max_concurrent": 50, "duration_s": 60, "seed": 1}.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import gevent
from gevent.pool import Group

from users.run_context import RECORDER
from shapes.arrivals import arrival_times, schedule_from_json
from users.runtime import get_settings

if TYPE_CHECKING:
    from users.voice import VoiceCallerBase


def dispatch_arrivals(caller: VoiceCallerBase, text: str) -> None:
    """Start `caller`'s calls on the schedule until it ends, then wait for the calls still running.
    Stopped early (the run ended), the calls still running are stopped with it."""
    schedule, max_concurrent, seed = schedule_from_json(text)
    rng = random.Random(seed)
    calls = Group()
    started = time.perf_counter()
    try:
        for at in arrival_times(schedule, rng):
            delay = started + at - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            RECORDER.count("calls_arrived")
            if len(calls) >= max_concurrent:
                RECORDER.count("calls_dropped_at_cap")
                continue
            calls.spawn(_one_call, caller)
        calls.join()
    finally:
        calls.kill(block=True, timeout=5)


def _one_call(caller: VoiceCallerBase) -> None:
    result = caller.one_call(get_settings())
    if result is not None and result.setup_failed:
        RECORDER.count("calls_dropped_at_setup")
