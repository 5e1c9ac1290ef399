"""Integration flows: `ConsultationUser` runs one whole medical scenario (scenarios/*.yaml) per call.

Each flow: start the call over REST (or open a browser session), stream every caller turn of the
scenario with its think time, barge-in and DTMF, time every turn (`voice_loop`, and by priority
`voice_loop[emergency]` / `voice_loop[urgent]` / `voice_loop[routine]`), hang up and fetch the call's
metrics from the target (the cross-check of VoiceCallerBase). The call itself is VoiceCallerBase.run_call
and CallSession; this module adds the scenario, the per-priority metric and the verdict.

A flow succeeds only when every turn got an audible answer within the hard turn timeout
(settings.turn_timeout_s) and, where the protocol shows the agent's text (the browser socket), every
turn's expected keywords appeared in its reply (case-insensitive). Per flow:
- a Locust request event: request_type "flow", name = the scenario id, response_time = the flow's
  total time (start call -> call metrics fetched), exception = why it failed;
- counters `flows_completed` / `flows_failed` and `flows_completed[<priority>]` / `flows_failed[<priority>]`,
  `flow_keywords_checked` (turns whose reply text was checked), `flows_interrupted` (stopped by the run's end).

Scenarios run in smooth weighted round-robin order per process and run (over any cycle of total-weight
flows, each scenario runs exactly `weight` times); the schedule is the run context's. Settings (config.py;
also environment variables):
- flow_scenarios (VOICELOAD_SCENARIOS): a scenario YAML file or folder instead of scenarios/
- flow_channel (VOICELOAD_FLOW_CHANNEL): telephony | browser | auto (default; every third flow uses the
  browser socket when the profile has one, the others the telephony media socket)
"""

from __future__ import annotations

import itertools
import time

from gevent import GreenletExit
from locust import events

from config import Settings
from users.run_context import RECORDER, RunContext, context_of, emit
from scenarios.catalog import Catalog, Scenario, ScenarioError, load_catalog, weighted_order
from users.call_setup import MediaTarget, start_call
from users.voice import LocustCallObserver, VoiceCallerBase, browser_media
from voice.call_plan import CallPlan, TurnScript
from voice.call_result import CallResult, call_failure
from audio.fixtures import clip_by_id

BROWSER_EVERY = 3  # auto: flow numbers 2, 5, 8, ... go over the browser socket


class FlowFailure(Exception):
    """Why a consultation flow failed (the flow's Locust request event carries it)."""


class FlowObserver(LocustCallObserver):
    """A call's measurements as usual, plus each turn's voice_loop again under `voice_loop[<priority>]`."""

    def __init__(self, priority: str) -> None:
        super().__init__()
        self.priority_metric = f"voice_loop[{priority}]"

    def metric(self, group: str, name: str, ms: float, error: str | None = None) -> None:
        super().metric(group, name, ms, error)
        if name == "voice_loop":
            emit(group, self.priority_metric, ms, error)


class FlowSchedule:
    """The process's scenarios in weighted round-robin order, handed out one flow at a time."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.order = weighted_order(catalog.scenarios)
        self.numbers = itertools.count()

    def next(self) -> tuple[int, Scenario]:
        number = next(self.numbers)
        return number, self.order[number % len(self.order)]


def flow_schedule(context: RunContext) -> FlowSchedule:
    """The run's schedule, from settings.flow_scenarios or scenarios/ (ScenarioError if invalid)."""
    if context.flow_schedule is None:
        context.flow_schedule = FlowSchedule(load_catalog(context.settings.flow_scenarios))
    return context.flow_schedule


def flow_channel(requested: str, number: int, settings: Settings) -> str:
    """telephony or browser for flow `number`: as requested, or (auto) by rotation over what the profile has."""
    if requested != "auto":
        return requested
    profile = settings.target_profile
    has_phone = profile.media_ws is not None and profile.start_call is not None
    if profile.browser_ws is not None and (not has_phone or number % BROWSER_EVERY == BROWSER_EVERY - 1):
        return "browser"
    return "telephony"


def plan_for(scenario: Scenario, settings: Settings) -> CallPlan:
    """The scenario's turns as a CallPlan (clips by id; think time, barge-in and DTMF per turn)."""
    turns = [TurnScript(clip_by_id(t.clip), barge_in_after_ms=t.barge_in_after_ms, dtmf=t.dtmf,
                        think_time_ms=t.think_time_ms) for t in scenario.turns]
    return CallPlan(turns, turn_timeout_s=settings.turn_timeout_s, think_time_ms=settings.think_time_ms,
                    ping_interval_s=settings.ping_interval_s)


def missing_keywords(scenario: Scenario, result: CallResult) -> str | None:
    """The first turn whose reply text lacks an expected keyword, as a reason; None when all are there."""
    for number, (spec, turn) in enumerate(zip(scenario.turns, result.turns), start=1):
        said = turn.assistant_text.lower()
        missing = [k for k in spec.expect if k.lower() not in said]
        if missing:
            heard = f"heard {turn.transcript.strip()[:60]!r}, " if turn.transcript else ""
            return (f"turn {number}: the agent's reply lacks {', '.join(map(repr, missing))} "
                    f"({heard}said {turn.assistant_text.strip()[:80]!r})")
    return None


def flow_failure(scenario: Scenario, result: CallResult) -> str | None:
    """Why the flow failed, or None: the call worked for the caller (voice.call_result.call_failure: every
    turn answered audibly in time, the socket kept, and, where the agent's text is visible, every expected
    keyword present) and every scripted turn was played."""
    if (failure := call_failure(result)) is not None:
        return failure.reason
    if result.answered_turns < len(scenario.turns):
        return f"{result.answered_turns} of {len(scenario.turns)} turns answered"
    return None


def record_flow(scenario: Scenario, failure: str | None, total_ms: float, channel: str) -> None:
    """Counters (overall and per priority) and the flow's Locust request event."""
    outcome = "flows_failed" if failure else "flows_completed"
    RECORDER.count(outcome)
    RECORDER.count(f"{outcome}[{scenario.priority}]")
    if failure:
        RECORDER.error("flow", f"{scenario.id} ({channel}): {failure}")
    events.request.fire(request_type="flow", name=scenario.id, response_time=total_ms, response_length=0,
                        exception=FlowFailure(failure) if failure else None,
                        context={"priority": scenario.priority, "channel": channel})


class ConsultationUser(VoiceCallerBase):
    """A patient calling the voice agent with one whole scenario per call (scenarios/*.yaml): emergency,
    urgent or routine, several turns with think times, barge-in and DTMF; see the module docstring."""

    weight = 1
    channel = "telephony"  # of the current flow

    def on_start(self) -> None:
        try:
            flow_schedule(context_of(self.environment))
        except ScenarioError as exc:
            RECORDER.error("flow", str(exc))
            self.stop()

    def connect_media(self, settings: Settings) -> MediaTarget:
        return browser_media(settings) if self.channel == "browser" else start_call(self.client, settings)

    def one_call(self, settings: Settings) -> None:
        """One whole scenario: the call, then its verdict, counters and request event."""
        number, scenario = flow_schedule(context_of(self.environment)).next()
        self.channel = flow_channel(settings.flow_channel, number, settings)
        started = time.perf_counter()
        text_visible = self.channel == "browser"
        checks = (lambda result: missing_keywords(scenario, result)) if text_visible else None
        try:
            result = self.run_call(settings, plan_for(scenario, settings), FlowObserver(scenario.priority), checks)
        except GreenletExit:
            RECORDER.count("flows_interrupted")
            raise
        failure = flow_failure(scenario, result)
        if text_visible and result.completed:
            RECORDER.count("flow_keywords_checked", sum(1 for t in scenario.turns if t.expect))
        record_flow(scenario, failure, (time.perf_counter() - started) * 1000.0, self.channel)

