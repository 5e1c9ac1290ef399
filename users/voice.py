"""Voice users: callers that talk to the agent over its media WebSocket, and a relay-dashboard listener.

- TelephonyCaller: start call over REST, then ACS JSON or Twilio mu-law media (from the profile).
- BrowserCaller: the browser conversation socket (binary PCM in, JSON envelopes out, transcripts).
- RelayListener: holds the relay socket open and counts the events the server pushes.

The phone and browser callers honour the caller options of the test types (CallOptions, from the
locustfile's --call-duration, --chunk-bytes, --chunk-interval-ms and --fault-rate; all off by default).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from typing import Callable
from urllib.parse import urlencode

import websocket
from locust import User, between, events, task
from locust.contrib.fasthttp import FastHttpUser

from config import Settings
from users.run_context import RECORDER, context_of, emit
from protocols.browser import BrowserCodec
from protocols.connection import open_websocket
from users.arrivals import dispatch_arrivals
from users.call_setup import CallSetupError, MediaTarget, start_call
from users.cross_check import client_minus_server
from users.runtime import get_settings
from voice.call_options import CallOptions
from voice.call_plan import CallPlan, TurnScript
from voice.call_result import ANSWERED, UNANSWERED, CallResult, call_failure
from voice.call_session import CallSession
from voice.faults import FaultInjector, fault_rng
from audio.fixtures import caller_clips

BARGE_IN_AFTER_MS = 800.0  # an interruption starts this long into the agent's audible reply
DTMF_DIGITS = "0123456789*#"
IDLE_S = 3600.0  # a caller that has placed its --calls-per-user calls waits this long (it is stopped long before)
MAX_LEGS = 1000  # bound of the new calls one call may place after injected disconnects and reconnects


class LocustCallObserver:
    """Sends a call's measurements to Locust (request events) and the exact recorder."""

    def __init__(self) -> None:
        self.worst_lateness = 0.0
        self.frames = 0

    def metric(self, group: str, name: str, ms: float, error: str | None = None) -> None:
        emit(group, name, ms, error)

    def value(self, name: str, value: float) -> None:
        RECORDER.record(name, value, "voice")

    def count(self, name: str, amount: int = 1) -> None:
        RECORDER.count(name, amount)

    def error(self, kind: str, message: str) -> None:
        RECORDER.error(kind, message)

    def lateness(self, ms: float) -> None:
        RECORDER.record("frame_send_lateness", ms, "websocket")
        self.frames += 1
        if ms > self.worst_lateness:
            self.worst_lateness = ms

    def flush(self) -> None:
        """Every frame is in the exact histogram; Locust gets one row per call that sent any: its worst frame."""
        if not self.frames:
            return
        events.request.fire(request_type="websocket", name="frame_send_lateness", response_time=self.worst_lateness,
                            response_length=0, exception=None, context={})


def conversation(settings: Settings, rng: random.Random = random) -> list[TurnScript]:
    """A caller's turns: random real utterances; later turns may interrupt the agent or press a key."""
    turns = []
    for number, clip in enumerate(rng.choices(caller_clips(), k=settings.turns_per_call)):
        barge = BARGE_IN_AFTER_MS if number > 0 and rng.random() < settings.barge_in_rate else None
        dtmf = rng.choice(DTMF_DIGITS) if rng.random() < settings.dtmf_rate else None
        turns.append(TurnScript(clip, barge_in_after_ms=barge, dtmf=dtmf))
    return turns


class VoiceCallerBase(FastHttpUser):
    """Shared call lifecycle: connect, run the measured session, count the outcome, cross-check."""

    abstract = True
    between_calls = between(0.5, 1.5)
    calls_made = 0

    def wait_time(self) -> float:
        """A pause between calls; once a caller with --calls-per-user has placed its calls, it waits idle (in
        Locust's waiting state, so a stop ends it at once) until the run or its load phase ends."""
        options = CallOptions.from_options(getattr(self.environment, "parsed_options", None))
        done = options.calls_per_user and self.calls_made >= options.calls_per_user
        return IDLE_S if done or (options.arrivals and self.calls_made) else self.between_calls()

    def connect_media(self, settings: Settings) -> MediaTarget:
        raise NotImplementedError

    @task
    def call(self) -> None:
        options = CallOptions.from_options(getattr(self.environment, "parsed_options", None))
        if options.arrivals:  # an open-model scenario: this caller starts calls on its schedule, once
            if not self.calls_made:
                self.calls_made = 1
                dispatch_arrivals(self, options.arrivals)
            return
        if options.calls_per_user and self.calls_made >= options.calls_per_user:
            return
        self.calls_made += 1
        self.one_call(get_settings())

    def one_call(self, settings: Settings) -> CallResult:
        """What one task run does: a call with a random conversation (subclasses may run other calls)."""
        options = CallOptions.from_options(getattr(self.environment, "parsed_options", None))
        plan = CallPlan(conversation(settings), turn_timeout_s=settings.turn_timeout_s,
                        think_time_ms=settings.think_time_ms, ping_interval_s=settings.ping_interval_s,
                        call_duration_s=options.call_duration_s, chunk_bytes=options.chunk_bytes,
                        chunk_interval_ms=options.chunk_interval_ms,
                        faults=FaultInjector(options.fault_rate, self.fault_rng) if options.fault_rate > 0 else None)
        return self.run_call(settings, plan, LocustCallObserver())

    @property
    def fault_rng(self) -> random.Random:
        """This caller's seeded generator of injected faults (voice.faults), numbered within its run."""
        if getattr(self, "_fault_rng", None) is None:
            self._fault_rng = fault_rng(next(context_of(self.environment).fault_streams))
        return self._fault_rng

    def run_call(self, settings: Settings, plan: CallPlan, observer: LocustCallObserver,
                 checks: Callable[[CallResult], str | None] | None = None) -> CallResult:
        """Start a call, run `plan` over its media socket, judge and count the outcome, log and cross-check it.
        A call that never started comes back with no turns and the reason in `failure`. After an injected
        disconnect or reconnect the call goes on as a new call (counted `calls_reconnected`) with the turns
        left; the outcome counts once for the whole, plus `calls_completed_with_faults` if faults were injected.
        `checks`: the caller's own checks of a call that worked (a consultation's expected keywords): the
        reason they failed, or None."""
        RECORDER.count("calls_attempted")
        legs: list[tuple[str, str, float, float, CallResult]] = []  # call id, protocol, opened, ended, result
        try:
            result = self._talk(settings, plan, observer, legs)
        except BaseException:
            RECORDER.count("calls_interrupted")  # stopped by the run's end: not judged
            raise
        finally:
            observer.flush()
        if checks is not None and call_failure(result) is None:
            result.checks_failed = checks(result)
        count_call_outcome(result)
        for call_id, protocol, opened_at, ended_at, leg in legs:
            if settings.call_log:
                append_call_log(settings.call_log, call_id, protocol, leg, ended_at - opened_at)
            self.cross_check(settings, call_id, opened_at, leg)
        return result

    def _talk(self, settings: Settings, plan: CallPlan, observer: LocustCallObserver,
              legs: list[tuple[str, str, float, float, CallResult]]) -> CallResult:
        """The call's media sessions, one after another after injected disconnects; each goes into `legs`."""
        opened = self.open_media(settings, first=True)
        if isinstance(opened, str):
            return CallResult(failure=opened, setup_failed=True)
        result: CallResult | None = None
        hangup_at = opened[2] + plan.call_duration_s if plan.call_duration_s > 0 else None
        for _ in range(MAX_LEGS):
            media, ws, opened_at = opened
            first_turn = 0 if result is None else result.continue_from
            leg = CallSession(ws, media.codec, plan, observer, first_turn=first_turn, hangup_at=hangup_at).run()
            legs.append((media.call_id, media.codec.name, opened_at, time.perf_counter(), leg))
            if leg.dropped:
                RECORDER.count("ws_dropped")
            if result is legs[0][4] and len(legs) > 1:  # the whole call is more than its first leg
                result = CallResult().absorb(result)
            result = leg if result is None else result.absorb(leg)
            if result.continue_from is None or result.failure is not None:
                break
            opened = self.open_media(settings, first=False)
            if isinstance(opened, str):  # the new call after a fault never started: a real failure
                result.failure, result.setup_failed = opened, True
                break
        result.continue_from = None
        return result

    def open_media(self, settings: Settings, first: bool) -> tuple[MediaTarget, websocket.WebSocket, float] | str:
        """Start a call and open its media socket -> (target, socket, when it opened), or why it did not.
        `first`: the call's first socket (counted calls_started), else a new call after an injected fault."""
        setup_started = time.perf_counter()
        try:
            media = self.connect_media(settings)
        except CallSetupError as exc:
            RECORDER.error("call_setup", str(exc))
            return f"call setup failed: {exc}"[:200]
        connect_started = time.perf_counter()
        try:
            ws, handshake_ms = open_websocket(media.url, media.headers, insecure=settings.insecure)
        except Exception as exc:  # noqa: BLE001 - any connect failure is a counted, reported failure
            reason = f"{exc.__class__.__name__}: {exc}"[:200]
            emit("websocket", "ws_handshake", (time.perf_counter() - connect_started) * 1000.0, reason)
            return f"media socket not opened: {reason}"
        opened_at = time.perf_counter()
        emit("websocket", "ws_handshake", handshake_ms)
        emit("voice", "call_setup", (opened_at - setup_started) * 1000.0)
        RECORDER.count("calls_started" if first else "calls_reconnected")
        RECORDER.count("ws_opened")
        return media, ws, opened_at

    def cross_check(self, settings: Settings, call_id: str, opened_at: float, result: CallResult) -> None:
        """Compare our timings with the server's own per-turn record, where the profile serves one."""
        endpoint = settings.target_profile.call_metrics
        if endpoint is None or not result.answered_turns:
            return
        with self.client.get(endpoint.path.format(call_id=call_id), name="call_metrics", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            try:
                server = response.json()
            except ValueError:
                response.failure("call metrics are not JSON")
                return
        for delta in client_minus_server(result.turns, opened_at, server):
            RECORDER.record("client_minus_server", delta, "crosscheck")


class TelephonyCaller(VoiceCallerBase):
    """A phone caller: start call over REST, stream real speech in 20 ms frames on absolute deadlines
    (ACS JSON or Twilio mu-law, from the profile); measures ws_handshake, ws_ping_rtt, voice_loop, barge_in."""

    weight = 2

    def connect_media(self, settings: Settings) -> MediaTarget:
        return start_call(self.client, settings)


class BrowserCaller(VoiceCallerBase):
    """A browser voice session: binary PCM16 frames (1024 B = 32 ms) on absolute deadlines; measures
    stt_first_partial, stt_final and voice_loop from the JSON envelopes, plus barge-in."""

    weight = 1

    def connect_media(self, settings: Settings) -> MediaTarget:
        return browser_media(settings)


def browser_media(settings: Settings) -> MediaTarget:
    """A new browser conversation session: its socket URL (session and call id in the query) and codec."""
    endpoint = settings.target_profile.browser_ws
    if endpoint is None:
        raise CallSetupError(f"profile {settings.profile} has no browser conversation socket")
    call_id = str(uuid.uuid4())
    url = f"{settings.websocket_base_url}{endpoint.path}?{urlencode({'session_id': call_id, 'call_id': call_id})}"
    return MediaTarget(call_id, url, {}, BrowserCodec())


def count_call_outcome(result: CallResult) -> None:
    """A call that ended, as the caller experienced it: calls_completed, or calls_failed and
    calls_failed_<why>; and its turns answered or not (turns cut by the planned hang-up are neither)."""
    failure = call_failure(result)
    RECORDER.count("calls_failed" if failure else "calls_completed")
    if failure is not None:
        RECORDER.count(f"calls_failed_{failure.kind}")
    elif result.faults:
        RECORDER.count("calls_completed_with_faults")
    answered = sum(1 for turn in result.turns if turn.outcome == ANSWERED)
    unanswered = sum(1 for turn in result.turns if turn.outcome == UNANSWERED)
    if answered:
        RECORDER.count("turns_answered", answered)
    if unanswered:
        RECORDER.count("turns_unanswered", unanswered)


def call_record(call_id: str, protocol: str, result: CallResult, duration_s: float | None = None) -> dict:
    """One call's per-turn timings (ms), as measured: the call log's line (`duration_s`: socket open to
    hang-up; `continues`: an injected disconnect/reconnect, the call goes on as the next line's call)."""
    def since(at: float | None, anchor: float) -> float | None:
        return None if at is None else round((at - anchor) * 1000.0, 3)

    turns = [{"turn": t.index, "clip": t.clip.id, "barge_in": t.barge_in,
              "voice_loop": since(t.first_audible_at, t.speech_end_at),
              "barge_in_ms": since(t.stopped_at, t.speech_start_at) if t.barge_in else None,
              "stt_first_partial": since(t.first_partial_at, t.speech_start_at),
              "stt_final": since(t.final_at, t.speech_end_at), "outcome": t.outcome, "fault": t.fault}
             for t in result.turns]
    failure = call_failure(result)
    return {"call_id": call_id, "protocol": protocol, "completed": failure is None,
            "failure": None if failure is None else failure.reason, "failure_kind": None if failure is None else failure.kind,
            "duration_s": None if duration_s is None else round(duration_s, 3), "faults": list(result.faults),
            "continues": result.continue_from is not None, "turns": turns}


def append_call_log(path, call_id: str, protocol: str, result: CallResult, duration_s: float | None = None) -> None:
    """One JSON line per call; a single small write, so lines from several processes do not interleave."""
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(call_record(call_id, protocol, result, duration_s)) + "\n")
    except OSError as exc:
        RECORDER.error("call_log", f"cannot append to {path}: {exc.strerror}")


class RelayListener(User):
    """A dashboard: holds the relay socket for `relay_hold_s`, counts pushed events and their lag
    (receive time - the event's own timestamp; meaningful when both clocks are in sync)."""

    weight = 1
    wait_time = between(0.5, 1.0)
    relay_hold_s = 20.0

    @task
    def listen(self) -> None:
        settings = get_settings()
        endpoint = settings.target_profile.relay_ws
        if endpoint is None:
            RECORDER.error("relay", f"profile {settings.profile} has no relay socket")
            self.stop()
            return
        try:
            ws, handshake_ms = open_websocket(settings.websocket_base_url + endpoint.path, insecure=settings.insecure)
        except Exception as exc:  # noqa: BLE001 - counted, reported
            emit("relay", "ws_handshake", 0.0, f"{exc.__class__.__name__}: {exc}"[:200])
            return
        emit("relay", "ws_handshake", handshake_ms)
        ws.settimeout(1.0)
        deadline = time.monotonic() + self.relay_hold_s
        try:
            while time.monotonic() < deadline:
                try:
                    message = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                received = dt.datetime.now(dt.timezone.utc)
                RECORDER.count("relay_events")
                lag = _event_lag_ms(message, received)
                if lag is not None:
                    emit("relay", "relay_event_lag", lag)
        except (websocket.WebSocketException, OSError) as exc:
            RECORDER.error("relay", f"relay socket closed: {exc.__class__.__name__}")
        finally:
            ws.close(timeout=1)


def _event_lag_ms(message: str | bytes, received: dt.datetime) -> float | None:
    try:
        stamp = json.loads(message).get("ts")
        sent = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        RECORDER.error("relay", "pushed event without a readable ts")
        return None
    return max(0.0, (received - sent).total_seconds() * 1000.0)
