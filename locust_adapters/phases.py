"""The load shape's phases in a Locust process: announced to every process that records samples (so each
sample is filed under its phase), followed for the report (span and peak users), and ended with a callback
once each phase has all its samples.
"""

from __future__ import annotations

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from locust_adapters import internals
from locust_adapters.run_clock import RunClock, elapsed, same_run

PHASE_POLL_S = 0.25
PHASE_MESSAGE = "voiceload_phase"
PHASE_REPORT_DELAY_S = 3.5  # a master hears of a phase's last worker samples within Locust's report interval (3 s)


def receive_phases(worker_runner, context) -> None:
    """A worker: file samples under the phase the master announces."""

    def _phase(msg, **_kw):
        context.recorder.phase = msg.data

    worker_runner.register_message(PHASE_MESSAGE, _phase)


def announce(runner, clock: RunClock, phase: str | None) -> None:
    """File the samples from now on under `phase`: here, or (master) on every worker."""
    if phase == clock.announced_phase:
        return
    clock.announced_phase = phase
    if isinstance(runner, MasterRunner):
        runner.send_message(PHASE_MESSAGE, phase)
    else:
        runner.environment.voiceload.recorder.phase = phase


def announce_phase_at_tick(environment: Environment, clock: RunClock, on_phase_end=None) -> None:
    """Announce a new phase in the shape's own tick, before the users it asks for are spawned, so the
    calls they start count in their phase (the follower loop notices a change only up to 0.25 s later).
    A local runner has every sample at hand: it runs `on_phase_end` for the phase that just ended there,
    before the next one starts, and ends the shape at once if that cut it short (shapes.base.end_now)."""
    shape = environment.shape_class
    local = not isinstance(environment.runner, MasterRunner)

    def wrap(tick):
        def tick_and_announce():
            current = tick()
            phase, ended = getattr(shape, "phase", None), clock.announced_phase
            if local and on_phase_end is not None and ended is not None and phase != ended:
                on_phase_end(environment, ended)
                if getattr(shape, "ended_early", None):
                    current = phase = shape.phase = None
            announce(environment.runner, clock, phase)
            return current
        return tick_and_announce

    internals.wrap_shape_tick(shape, wrap, marker="announces_phase")


def follow_phases(environment: Environment, clock: RunClock, on_phase_end=None) -> None:
    """Follow the load shape's `phase`: log each phase's span and peak users, and tell every process
    that records samples (this one, or the workers) so they file them under it. On a master, when a phase
    ends, `on_phase_end(environment, phase)` runs once the workers' last reports of it are in."""
    runner = environment.runner
    current = None
    run = clock.started_perf
    master = isinstance(runner, MasterRunner)
    while runner.state not in ("stopped", "quitting") and same_run(clock, run):
        phase = getattr(environment.shape_class, "phase", None)
        if phase != current:
            if master and current is not None and phase is not None and on_phase_end is not None:
                gevent.spawn_later(PHASE_REPORT_DELAY_S, on_phase_end, environment, current)  # once workers reported
            if clock.phases and clock.phases[-1]["end_s"] is None:
                clock.phases[-1]["end_s"] = elapsed(clock)
            if phase is not None:
                clock.phases.append({"name": phase, "start_s": elapsed(clock), "end_s": None, "users": 0})
            current = phase
            announce(runner, clock, phase)
        if clock.phases and clock.phases[-1]["end_s"] is None:
            clock.phases[-1]["users"] = max(clock.phases[-1]["users"], runner.user_count)
        gevent.sleep(PHASE_POLL_S)
