"""One run's state on the load side: a `RunContext`, attached to Locust's Environment as `environment.voiceload`.

Everything a run owns lives here, never in a module: its settings, the exact-sample recorder (with the load
phase it files samples under), the run clock, and per-run flags (errors reported once per run, the numbering
of the callers' fault generators, the flow schedule). `attach(environment)` gives the Environment its
context at Locust's init, and the context starts afresh at every `test_start`, which every runner kind fires
when a run starts: a local runner, a master, and each worker at its first spawn message (after taking the
master's options). So a second run started from the web UI reports only itself, with its start form's
settings. The load phase is the one exception: it ends with its run (`test_stop`), not at the next start,
because a master may announce the next run's first phase to a worker before its spawn message.

Code with no environment at hand (the call observers, `emit`) reaches the context through `current()`: the
one attached last (a Locust process has one Environment), or before any attach (a library use, a test) a
context of its own. `RECORDER` forwards to the current context's recorder, whichever run it is.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from config import ConfigError, Settings, load_settings
from locust_adapters.events import record_and_fire
from locust_adapters.run_clock import RunClock
from metrics.recorder import MetricsRecorder

log = logging.getLogger("voiceload")
SettingsFactory = Callable[[Any], Settings]  # environment -> the settings of the run about to start


class RunContext:
    """Settings, recorder, clock, phase and per-run flags of this process's current run."""

    def __init__(self, settings_factory: SettingsFactory | None = None, settings: Settings | None = None) -> None:
        self.environment = None  # the Locust Environment it is attached to, if any
        self.settings_factory = settings_factory
        self._settings = settings
        self.clock = RunClock()  # one object for the process (listeners hold it); reset in place at each start
        self.recorder = MetricsRecorder()
        self.runs = 0  # runs started so far in this process
        self._new_run()

    def _new_run(self) -> None:
        self.reported: set[str] = set()  # see once()
        self.fault_streams = itertools.count()  # numbers this run's callers, for their seeded fault generators
        self.flow_schedule: Any = None  # users.flows.FlowSchedule, built at the run's first flow

    @property
    def settings(self) -> Settings:
        """The run's settings (from the environment alone if nothing set them)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._settings = settings

    def start(self, environment: Any = None, **_kw: Any) -> None:
        """`test_start`: forget the previous run (samples, clock, flags) and take the settings as the options
        are now: a worker has just received the master's, and the web UI's start form may have changed them."""
        phase = self.recorder.phase  # already this run's (announced before the start, or None)
        self.recorder = MetricsRecorder()
        self.recorder.phase = phase
        self.clock.reset()
        self._new_run()
        self.runs += 1
        if self.settings_factory is not None and environment is not None:
            try:
                self._settings = self.settings_factory(environment)
            except ConfigError as exc:
                log.error("voiceload: %s; keeping the previous settings", exc)

    def stop(self, **_kw: Any) -> None:
        """`test_stop`: the run's load phase ends with it (a next run without a shape has none)."""
        self.recorder.phase = None

    def once(self, key: str) -> bool:
        """True the first time `key` is asked in this run: an error reported once per run, not per user."""
        if key in self.reported:
            return False
        self.reported.add(key)
        return True


_current = RunContext()


def current() -> RunContext:
    """This process's current run context (see the module docstring)."""
    return _current


def attach(environment: Any, settings_factory: SettingsFactory | None = None) -> RunContext:
    """`environment.voiceload`: the run context of this Environment, made the current one. The first call
    registers its reset at every `test_start` (call it before installing other test_start listeners, so
    they see the new run) and its phase's end at `test_stop`. The first Environment takes over the context
    used so far, with any settings already set (set_settings before the Environment)."""
    global _current
    context = getattr(environment, "voiceload", None)
    if context is None:
        context = _current if _current.environment is None else RunContext()
        context.environment = environment
        environment.voiceload = context
        environment.events.test_start.add_listener(context.start)
        environment.events.test_stop.add_listener(context.stop)
    if settings_factory is not None:
        context.settings_factory = settings_factory
    _current = context
    return context


def context_of(environment: Any) -> RunContext:
    """The environment's run context; the current one for an Environment nobody attached (a library use)."""
    return getattr(environment, "voiceload", None) or _current


class _CurrentRecorder:
    """`RECORDER`: forwards to the current run's recorder, whichever it is when used (each start replaces it)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(_current.recorder, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_current.recorder, name, value)

    def __repr__(self) -> str:
        return f"<the current run's recorder: {_current.recorder!r}>"


RECORDER: Any = _CurrentRecorder()


def emit(group: str, name: str, ms: float, error: str | None = None) -> None:
    """Record a sample exactly in the current run and fire it as a Locust request event (locust_adapters/events.py)."""
    record_and_fire(_current.recorder, group, name, ms, error)
