"""Voice users: callers that place a call and talk to the agent over its media WebSocket."""

from __future__ import annotations

import random
import time

from gevent import GreenletExit
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from metrics.events import emit
from metrics.histogram import LatencyHistogram
from metrics.recorder import RECORDER
from protocols.connection import open_websocket
from users.call_setup import CallSetupError, start_call
from users.runtime import get_settings
from voice.call_session import CallPlan, CallSession
from voice.fixtures import caller_clips


class TelephonyCaller(FastHttpUser):
    """A phone caller: start call over REST, stream real speech in 20 ms frames on absolute deadlines
    (ACS JSON or Twilio mu-law, from the profile), measure ws_handshake, ws_ping_rtt, voice_loop."""

    wait_time = between(0.5, 1.5)
    weight = 2

    @task
    def phone_call(self) -> None:
        settings = get_settings()
        setup_started = time.perf_counter()
        RECORDER.count("calls_attempted")
        try:
            media = start_call(self.client, settings)
        except CallSetupError as exc:
            RECORDER.error("call_setup", str(exc))
            RECORDER.count("calls_failed")
            return
        connect_started = time.perf_counter()
        try:
            ws, handshake_ms = open_websocket(media.url, media.headers, insecure=settings.insecure)
        except Exception as exc:  # noqa: BLE001 - any connect failure is a counted, reported failure
            emit("websocket", "ws_handshake", (time.perf_counter() - connect_started) * 1000.0,
                 f"{exc.__class__.__name__}: {exc}"[:200])
            RECORDER.count("calls_failed")
            return
        emit("websocket", "ws_handshake", handshake_ms)
        emit("voice", "call_setup", (time.perf_counter() - setup_started) * 1000.0)
        RECORDER.count("calls_started")
        RECORDER.count("ws_opened")

        plan = CallPlan(clips=random.choices(caller_clips(), k=settings.turns_per_call),
                        turn_timeout_s=settings.turn_timeout_s, think_time_ms=settings.think_time_ms,
                        ping_interval_s=settings.ping_interval_s)
        lateness = LatencyHistogram()
        session = CallSession(ws, media.codec, plan, emit, RECORDER.error, lateness.record)
        outcome = "calls_interrupted"
        try:
            result = session.run()
            outcome = "calls_completed" if result.completed else "calls_failed"
            if result.dropped:
                RECORDER.count("ws_dropped")
        except GreenletExit:
            raise
        finally:
            RECORDER.count(outcome)
            if lateness.total:
                RECORDER.metrics.setdefault("frame_send_lateness", LatencyHistogram()).merge(lateness)
                RECORDER.metric_groups.setdefault("frame_send_lateness", "websocket")
                emit_locust_only("websocket", "frame_send_lateness", lateness.percentile(99))


def emit_locust_only(group: str, name: str, ms: float) -> None:
    """One Locust row per call for per-frame metrics (the exact histogram already has every frame)."""
    from locust import events

    events.request.fire(request_type=group, name=name, response_time=ms, response_length=0, exception=None, context={})
