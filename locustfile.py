"""voiceload's Locust entry point: `locust -f locustfile.py` (web UI) or headless, or via run_load_tests.py.

Exposes every user class, adds voiceload's options to Locust's command line (and web UI), gives Locust's
Environment its run context (users/run_context.py: settings, exact samples, clock and per-run flags, all
started afresh at every test_start from the options as they are then, so the web UI's start form applies to
each run it starts, user counts per kind included), and installs the exact-metrics plumbing that writes
results/<run-id>/report.json, report.html and junit.xml when Locust quits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

import gevent
from locust import events
from locust.runners import WorkerRunner

from config import ConfigError, load_settings
from locust_adapters import internals, plugin
from locust_adapters.run_clock import RunClock
from locust_adapters.run_section import locust_errors, run_section
from orchestrator.groups import COUNT_KEY_OF_CLASS
from orchestrator.shared_options import add_to_locust
from orchestrator.arg_types import fraction, non_negative_float, non_negative_int, positive_float
from orchestrator.capacity import step_verdicts
from reporting.report import build_report, phase_rows
from shapes import add_shape_options, install_shape  # never the shape classes: Locust would pick one up
from reporting.writer import write_run_outputs
from users.api import ApiUser
from users.backend_cosmos import CosmosUser
from users.backend_llm import LLMUser
from users.backend_llm import load_sdk as load_llm_sdk
from users.backend_redis import RedisUser
from users.backend_speech import SpeechUser
from users.run_context import attach
from users.flows import ConsultationUser
from users.voice import BrowserCaller, RelayListener, TelephonyCaller
from webui import install_voice_tab

__all__ = ["ApiUser", "BrowserCaller", "ConsultationUser", "CosmosUser", "LLMUser", "RedisUser", "RelayListener", "SpeechUser", "TelephonyCaller"]
USER_COUNT_OPTIONS = {kind: globals()[name] for name, kind in COUNT_KEY_OF_CLASS.items()}  # --voice-users -> TelephonyCaller
DECLARED_FIXED_COUNTS = {name: user_class.fixed_count for name, user_class in USER_COUNT_OPTIONS.items()}
MASTER_HEARTBEAT_TIMEOUT_S = 20.0
log = logging.getLogger("voiceload")


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    group = parser  # Locust's web UI options (include_in_web_ui) only work on the parser itself
    add_to_locust(parser)  # shared with run_load_tests.py: --target-profile, --voiceload-config, the user counts, ...
    group.add_argument("--results-dir", default=None, env_var="VOICELOAD_RESULTS_DIR", include_in_web_ui=False,
                       help="folder for results/<run-id>/ (default: results)")
    group.add_argument("--run-id", default="", include_in_web_ui=False, help="name of this run's results folder (default: a timestamp)")
    group.add_argument("--suite", default="", include_in_web_ui=False, help="suite name recorded in the report")
    group.add_argument("--samples-file", default=None, include_in_web_ui=False,
                       help="also write this process's exact samples here (JSON), for run_load_tests.py to merge the "
                       "groups of one run; such a run does not move results/latest")
    group.add_argument("--absent-endpoints", default="", include_in_web_ui=False, env_var="VOICELOAD_ABSENT_ENDPOINTS",
                       help="comma-separated endpoints of the profile the target does not serve (run_load_tests.py "
                       "finds them at preflight): every user leaves them out")
    group.add_argument("--call-log", default=None, include_in_web_ui=False, help="append one JSON line per finished call with its per-turn timings")
    group.add_argument("--master-heartbeat-timeout", type=positive_float, default=MASTER_HEARTBEAT_TIMEOUT_S, metavar="S",
                       env_var="VOICELOAD_MASTER_HEARTBEAT_TIMEOUT", include_in_web_ui=False,
                       help="a worker that hears nothing from its master for S seconds stops its users and exits, so a "
                       f"killed master leaves no load behind (default {MASTER_HEARTBEAT_TIMEOUT_S:g}; Locust's own is 60)")
    add_shape_options(parser)
    # caller options of the test types, read by the phone and browser callers (voice.call_options.CallOptions)
    group.add_argument("--call-duration", type=non_negative_float, default=0.0, metavar="S", include_in_web_ui=False,
                       help="each call lasts S seconds from its media socket opening, cycling its turns, then hangs "
                       "up; a turn cut by that counts as turns_cut_by_hangup, not a failure (default 0: off)")
    group.add_argument("--chunk-bytes", type=non_negative_int, default=0, metavar="B", include_in_web_ui=False,
                       help="send B bytes of wire audio (PCM16 16 kHz, or mu-law 8 kHz for Twilio) per message "
                       "(default 0: real time for --chunk-interval-ms, or the profile's own frames)")
    group.add_argument("--chunk-interval-ms", type=non_negative_float, default=0.0, metavar="MS", include_in_web_ui=False,
                       help="one audio message every MS ms, on absolute deadlines (default 0: real time for "
                       "--chunk-bytes, or the profile's own frames)")
    group.add_argument("--calls-per-user", type=non_negative_int, default=0, metavar="N", include_in_web_ui=False,
                       help="each phone or browser caller places N calls, then waits idle until it is stopped, so a "
                       "test type's -n calls are exactly N calls (default 0: calls until the run ends)")
    group.add_argument("--arrivals", default="", metavar="JSON", include_in_web_ui=False,
                       help="open model: each phone or browser caller starts calls on this Poisson schedule instead of "
                       "one after another, e.g. {\"rate\": 2, \"per\": \"s\", \"max_concurrent\": 50, \"duration_s\": 60} "
                       "(users/arrivals.py; run_load_tests.py writes it from a plan's arrivals:)")
    group.add_argument("--stop-at-broken-phase", action="store_true", default=False, include_in_web_ui=False,
                       help="end the load shape at the first phase that breaks an SLO or the success floor (the "
                       "capacity finder's steps); default: run every phase")
    group.add_argument("--fault-rate", type=fraction, default=0.0, metavar="P", include_in_web_ui=False,
                       help="chance per turn, 0-1, that the caller injects a fault on purpose: skipped chunks, a "
                       "malformed frame, an abrupt disconnect mid-turn or a reconnect (default 0: off)")


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    # Importing the SDKs takes seconds without running gevent's loop, so its cached clock is stale and
    # Locust's --run-time timer, scheduled right after this, would fire seconds early.
    gevent.get_hub().loop.update_now()
    options = environment.parsed_options
    if options is None:  # used as a library without a command line
        if LLMUser in environment.user_classes:
            load_llm_sdk()
        attach(environment)
        plugin.install(environment, _write_reports)
        return
    try:
        settings = _settings_from_options(environment)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        os._exit(2)  # before anything starts; Locust would otherwise print a traceback
    attach(environment, _settings_from_options).settings = settings  # before every other test_start listener
    if isinstance(environment.runner, WorkerRunner):
        # Locust reads this module constant on each check; its default of 60 s leaves an orphaned worker
        # loading the target for a minute after its master died
        internals.set_master_heartbeat_timeout(options.master_heartbeat_timeout)
    if not environment.host and settings.api_base_url:
        environment.host = settings.api_base_url
    environment.events.test_start.add_listener(_apply_user_counts)
    if LLMUser in environment.user_classes:
        load_llm_sdk()
    install_shape(environment)
    clock = plugin.install(environment, _write_reports, _end_at_a_broken_phase)
    install_voice_tab(environment, clock)


def _settings_from_options(environment):
    """The settings of the options as they are now (at init, and at each start: the run context's factory)."""
    options = environment.parsed_options
    overrides = {"api_base_url": environment.host, "profile": options.target_profile, "results_dir": options.results_dir,
                 "turns_per_call": options.turns_per_call, "barge_in_rate": options.barge_in_rate,
                 "call_log": options.call_log, "absent_endpoints": options.absent_endpoints}
    # the web UI's start form sends a field left empty as "": not given, as on the command line
    return load_settings({key: None if value == "" else value for key, value in overrides.items()},
                         config_file=options.voiceload_config or None)


def _apply_user_counts(environment, **_kw) -> None:
    """At each start (every runner kind; a master's dispatcher reads them after test_start): the exact user
    counts per kind (--voice-users, ...) as the options are now, which the web UI's start form sets; with
    none given, each class's own (0: by weight). Locust reads them from the classes (fixed_count)."""
    counts = {name: max(0, int(getattr(environment.parsed_options, name, 0) or 0)) for name in USER_COUNT_OPTIONS}
    for name, user_class in USER_COUNT_OPTIONS.items():
        user_class.fixed_count = counts[name] if any(counts.values()) else DECLARED_FIXED_COUNTS[name]


def _end_at_a_broken_phase(environment, phase: str) -> None:
    """With --stop-at-broken-phase: a phase (a capacity step) that broke an SLO or the success floor ends the
    shape, as the capacity finder stops "until" something breaks."""
    shape = environment.shape_class
    if not getattr(environment.parsed_options, "stop_at_broken_phase", False) or shape is None:
        return
    context = environment.voiceload
    step = step_verdicts(phase_rows(context.recorder, [{"name": phase}], context.settings))[0]
    if not step["held"] and hasattr(shape, "end_now"):
        broken = ", ".join(b["metric"] for b in step["broken"]) or "no samples"
        log.info("voiceload: %s broke (%s): ending the shape there", phase, broken)
        shape.end_now(f"{phase} broke: {broken}")


def _write_reports(environment, clock: RunClock) -> None:
    """Master / local runner, at quit: build report.json from the last run's exact samples and write all files."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    settings, recorder = environment.voiceload.settings, environment.voiceload.recorder
    options = environment.parsed_options
    run = run_section(environment, clock, settings, clock.ended_at or dt.datetime.now(dt.timezone.utc))
    run_time = clock.planned_run_time
    run["interrupted"] = bool(run_time and run["duration_s"] < run_time - 2.0)
    run_id = run["id"]
    exceptions = locust_errors(runner)
    report = build_report(recorder, settings, run, clock.timeline, exceptions, phase_log=clock.phases)
    run_dir = Path(settings.results_dir) / run_id
    samples_file = getattr(options, "samples_file", None) if options else None
    write_run_outputs(report, run_dir, latest=not samples_file)
    if samples_file:  # one group of a larger run: the orchestrator merges these into the run's report
        Path(samples_file).write_text(json.dumps({"run": run, "timeline": clock.timeline, "phases": clock.phases, "locust_errors": exceptions,
                                                  "samples": recorder.drain()}))
    log.info("voiceload: report written to %s", run_dir / "report.json")
