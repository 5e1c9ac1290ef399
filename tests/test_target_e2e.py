"""End-to-end tests of the reference target: a real `python -m target` process, a real redis-server,
real speech fixtures streamed on absolute deadlines with websocket-client. No mocks.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import redis

try:
    from tests import target_fixtures as tf
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import)
    import target_fixtures as tf

from audio.pcm import downsample_16k_to_8k, mulaw_decode, mulaw_encode, speech_bounds_ms  # noqa: E402

pytestmark = pytest.mark.priority  # its caller streams on deadlines and its asserts hold to 10-15 ms

FIXED_LOOP_MS = 60 + 150 + 50  # stt_final + llm_ttft + tts_first_byte p50s (fixed mode)
AGENT_CLIPS = [c for c in tf.MANIFEST["clips"] if c["role"] == "agent"]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[tf.RedisServer]:
    server = tf.RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def target(redis_server: tf.RedisServer) -> Iterator[tf.TargetServer]:
    server = tf.TargetServer("--redis-url", redis_server.url, "--latency-mode", "fixed")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slot_target() -> Iterator[tf.TargetServer]:
    """No Redis, a single LLM slot, 100 ms stall before REST answers and each turn's first audio."""
    server = tf.TargetServer("--latency-mode", "fixed", "--llm-slots", "1", "--stall-ms", "100")
    yield server
    server.stop()


class Subscriber:
    """A real redis-py pattern subscriber on `session:*`, collecting messages in a thread."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("session:*")
        self.messages: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                self.messages.append({"channel": message["channel"].decode(), **json.loads(message["data"])})

    def events(self, call_id: str) -> list[str]:
        return [m["event"] for m in list(self.messages) if m["call_id"] == call_id]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.pubsub.close()


def assert_fixed_turn(turn: dict[str, Any], clip_index: int = 0) -> None:
    """Ground truth of a completed fixed-mode turn with no queueing."""
    assert turn["cancelled"] is False and turn["barge_in_ms"] is None
    assert turn["modelled"]["stt_final"] == 60 and turn["modelled"]["llm_ttft"] == 150
    assert turn["modelled"]["tts_first_byte"] == 50
    assert abs(turn["eot_to_first_audio_ms"] - FIXED_LOOP_MS) <= 15, turn
    assert turn["eot_to_first_audio_ms"] == pytest.approx(turn["first_audio_sent_ms"] - turn["eot_detected_ms"], abs=0.01)
    assert turn["llm_queue_ms"] < 10
    assert abs(turn["stt_final_ms"] - turn["eot_detected_ms"] - 60) <= 10
    assert abs(turn["llm_first_token_ms"] - turn["stt_final_ms"] - 150) <= 10
    assert abs(turn["tts_first_byte_ms"] - turn["llm_first_token_ms"] - 50) <= 10
    clip = AGENT_CLIPS[clip_index]
    assert turn["agent_clip"] == clip["id"] and turn["agent_speech_start_ms"] == clip["speech_start_ms"]
    frames = -(-clip["duration_ms"] // 40)
    assert turn["last_audio_sent_ms"] - turn["first_audio_sent_ms"] == pytest.approx((frames - 1) * 40, abs=10)


def assert_eot_after_speech(turn: dict[str, Any], bounds: tuple[int, int]) -> None:
    """EOT is detected on the arrival of the frame completing 300 ms of trailing silence: frames are sent at
    the start of their 20 ms slot, so that is 300 - 20 ms after the speech end on the send schedule."""
    spoken = turn["eot_detected_ms"] - turn["speech_start_ms"]
    assert bounds[1] - bounds[0] + 280 - 15 <= spoken <= bounds[1] - bounds[0] + 280 + 15, (spoken, bounds)


# -- REST --------------------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_health_endpoints_and_docs(target: tf.TargetServer) -> None:
    for path in ("/api/v1/health", "/health", "/healthcheck"):
        response = target.http.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy" and body["redis"] == "ok"
        assert set(body) >= {"active_calls", "calls_total", "llm_slots", "counters"}
        assert set(body["llm_slots"]) == {"size", "busy", "queued"} and body["llm_slots"]["size"] == 16
        assert {"malformed_frames", "redis_errors", "dropped_sockets"} <= set(body["counters"])
    docs = target.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/api/v1/calls/initiate", "/api/call"])
def test_initiate_call(target: tf.TargetServer, redis_server: tf.RedisServer, path: str) -> None:
    response = target.http.post(path, json={"target_number": "+15551234567", "context": {"patient": "p-1"}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "initiating" and body["target_number"] == "+15551234567"
    assert uuid.UUID(body["call_id"]).version == 4
    assert target.truth(body["call_id"])["status"] == "initiating"
    tf.wait_until(lambda: redis_server.client.hget(f"session:{body['call_id']}", "status") == b"initiating", 5,
                  what="session hash of the initiated call")
    for bad in ("5551234567", "+05551234567", "+1555", "+1555123456789012", "+1555abc4567"):
        rejected = target.http.post(path, json={"target_number": bad})
        assert rejected.status_code == 422 and "E.164" in rejected.json()["detail"], bad
    assert target.http.post(path, json={}).status_code == 422


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/api/v1/calls/answer", "/api/call/inbound"])
def test_inbound_event_grid(target: tf.TargetServer, path: str) -> None:
    validation = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"},
                   "eventTime": "2024-11-15T19:16:12Z", "dataVersion": "1"}]
    response = target.http.post(path, json=validation)
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    incoming = [{"id": "2", "eventType": "Microsoft.Communication.IncomingCall", "subject": "/caller/4:+15551234567",
                 "data": {"to": {"kind": "phoneNumber", "rawId": "4:+15557654321"},
                          "from": {"kind": "phoneNumber", "rawId": "4:+15551234567"},
                          "incomingCallContext": "eyJhbGciOi...", "correlationId": str(uuid.uuid4())},
                 "eventTime": "2024-11-15T19:16:12Z", "dataVersion": "1.0"}]
    response = target.http.post(path, json=incoming)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "answered"
    assert target.truth(body["call_id"])["status"] == "answered"
    for bad in ({"eventType": "x"}, [{"id": "3", "data": {}}], "nope"):
        rejected = target.http.post(path, json=bad)
        assert rejected.status_code == 400 and rejected.json()["detail"], bad
    assert target.http.post(path, content=b"{not json", headers={"content-type": "application/json"}).status_code == 400


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/api/v1/calls/callbacks", "/call/callbacks"])
def test_callbacks_cloud_events(target: tf.TargetServer, path: str) -> None:
    call_id = target.http.post("/api/call", json={"target_number": "+15551234567"}).json()["call_id"]

    def event(kind: str) -> dict[str, Any]:
        return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"calling/callConnections/{call_id}",
                "type": f"Microsoft.Communication.{kind}", "time": "2024-11-15T19:16:12Z",
                "data": {"callConnectionId": call_id, "serverCallId": "s", "correlationId": "c"}}

    response = target.http.post(path, json=[event("CallConnected"), event("PlayCompleted")])
    assert response.status_code == 200 and response.json() == {"processed": 2}
    truth = target.truth(call_id)
    assert truth["status"] == "connected" and truth["last_callback"] == "Microsoft.Communication.PlayCompleted"
    assert target.http.post(path, json=[event("CallDisconnected")]).json() == {"processed": 1}
    assert target.truth(call_id)["status"] == "disconnected"
    for bad in ({"type": "x"}, [{"specversion": "1.0"}], [1]):
        assert target.http.post(path, json=bad).status_code == 400


@pytest.mark.timeout(20)
def test_metrics_unknown_call_is_404(target: tf.TargetServer) -> None:
    assert target.http.get("/api/v1/metrics/session/no-such-call").status_code == 404
    assert target.http.get("/api/call/no-such-call/metrics").status_code == 404


@pytest.mark.timeout(20)
def test_twilio_inbound_twiml(target: tf.TargetServer) -> None:
    response = target.http.post("/calls/inbound", data={"From": "+15551234567", "To": "+15557654321", "CallSid": "CA123"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.text)
    stream = root.find("./Connect/Stream")
    assert root.tag == "Response" and stream is not None
    assert stream.get("url") == f"ws://127.0.0.1:{target.port}/audio-stream"
    param = stream.find("Parameter")
    assert param is not None and param.get("name") == "callSid" and param.get("value") == "CA123"
    secure = target.http.post("/calls/inbound", data={"From": "+1", "To": "+2"},
                              headers={"x-forwarded-proto": "https", "host": "agent.example.com"})
    assert ET.fromstring(secure.text).find("./Connect/Stream").get("url") == "wss://agent.example.com/audio-stream"
    assert target.http.post("/calls/inbound", data={"From": "+15551234567"}).status_code == 400


# -- media: one full turn per protocol ---------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_acs_turn_end_to_end_with_redis(target: tf.TargetServer, redis_server: tf.RedisServer) -> None:
    subscriber = Subscriber(redis_server.client)
    call_id = str(uuid.uuid4())
    clip = tf.caller_clip("caller_yes")
    caller = tf.Caller(f"{target.ws_base}/api/v1/media/stream", header=[f"x-ms-call-connection-id: {call_id}"])
    try:
        caller.send_text(json.dumps({"kind": "AudioMetadata", "audioMetadata": {
            "subscriptionId": "s", "encoding": "PCM", "sampleRate": 16000, "channels": 1, "length": 640}}))
        t0 = caller.stream(tf.acs_frames(clip.pcm + tf.silence(500)), 20)
        first = caller.wait_for(tf.audible(tf.acs_audio), 5)
        voice_loop = (first.t - t0) * 1000 - clip.speech_end_ms
        assert 300 + FIXED_LOOP_MS - 60 < voice_loop < 300 + FIXED_LOOP_MS + 60
        caller.send_text(json.dumps({"kind": "DtmfData", "dtmfData": {"data": "3"}}))
        n_frames = -(-AGENT_CLIPS[0]["duration_ms"] // 40)
        tf.wait_until(lambda: len(caller.messages(lambda r: tf.acs_audio(r) is not None)) >= n_frames, 6,
                      what="the whole agent clip")
        audio = [tf.acs_audio(r) for r in caller.messages(lambda r: tf.acs_audio(r) is not None)]
        assert {len(a) for a in audio} == {1280}
        assert json.loads(caller.messages()[0].data)["audioData"]["silent"] is False
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_id))["status"] == "ended" and t, 5, what="call end")
    assert truth["protocol"] == "acs" and truth["path"] == "/api/v1/media/stream" and truth["dtmf"] == ["3"]
    assert truth["settings"]["latency_mode"] == "fixed" and truth["settings"]["eot_silence_ms"] == 300
    assert truth["malformed_frames"] == 0 and len(truth["turns"]) == 1
    assert_fixed_turn(truth["turns"][0])
    assert_eot_after_speech(truth["turns"][0], (clip.speech_start_ms, clip.speech_end_ms))
    session = tf.wait_until(lambda: (h := redis_server.client.hgetall(f"session:{call_id}")).get(b"status") == b"ended" and h,
                            5, what="session hash")
    assert session[b"protocol"] == b"acs" and int(session[b"turns"]) == 1 and b"created_at" in session
    history = json.loads(session[b"history"])
    assert history[0]["role"] == "user" and history[1] == {"role": "assistant", "content": AGENT_CLIPS[0]["text"]}
    assert json.loads(session[b"last_turn"])["turn"] == 1
    tf.wait_until(lambda: "call_end" in subscriber.events(call_id), 5, what="call_end published")
    subscriber.close()
    events = subscriber.events(call_id)
    for name in ("call_start", "speech_start", "end_of_turn", "transcript_final", "agent_audio_start",
                 "agent_audio_end", "dtmf", "call_end"):
        assert name in events, (name, events)
    assert all(m["channel"] == f"session:{call_id}" for m in subscriber.messages if m["call_id"] == call_id)


@pytest.mark.timeout(30)
def test_twilio_turn_end_to_end(target: tf.TargetServer) -> None:
    twiml = target.http.post("/calls/inbound", data={"From": "+15551234567", "To": "+15557654321"}).text
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    call_sid = stream.find("Parameter").get("value")
    clip = tf.caller_clip("caller_yes")
    caller = tf.Caller(stream.get("url"))
    try:
        caller.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        caller.send_text(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ42", "start": {
            "streamSid": "MZ42", "callSid": call_sid, "tracks": ["inbound"], "customParameters": {"callSid": call_sid},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        caller.stream(tf.twilio_frames(clip.pcm + tf.silence(500), "MZ42"), 20)
        caller.wait_for(tf.audible(tf.twilio_audio), 5)
        caller.send_text(json.dumps({"event": "dtmf", "streamSid": "MZ42", "dtmf": {"track": "inbound_track", "digit": "7"}}))
        mark = caller.wait_for(lambda r: r.json.get("event") == "mark", 6)
        assert mark.json == {"event": "mark", "streamSid": "MZ42", "mark": {"name": "turn-1"}}
        media = caller.messages(lambda r: r.json.get("event") == "media")
        assert all(r.json["streamSid"] == "MZ42" for r in media)
        assert {len(tf.twilio_audio(r)) // 2 for r in media} == {320}  # 320 mu-law bytes = 40 ms at 8 kHz
        assert len(media) == -(-AGENT_CLIPS[0]["duration_ms"] // 40) and media[-1].t <= mark.t
        caller.send_text(json.dumps({"event": "stop", "streamSid": "MZ42", "stop": {"callSid": call_sid}}))
        assert caller.closed.wait(3) and caller.close_code == 1000
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_sid))["status"] == "ended" and t, 5, what="call end")
    assert truth["protocol"] == "twilio" and truth["dtmf"] == ["7"] and truth["malformed_frames"] == 0
    assert_fixed_turn(truth["turns"][0])
    # 8 kHz mu-law loses the sibilants' energy: the VAD sees the speech of the telephone audio end earlier
    telephone = mulaw_decode(mulaw_encode(downsample_16k_to_8k(clip.pcm))).astype("<i2").tobytes()
    assert_eot_after_speech(truth["turns"][0], speech_bounds_ms(telephone, 8000))


@pytest.mark.timeout(30)
def test_browser_turn_end_to_end(target: tf.TargetServer) -> None:
    session_id = "sess-" + uuid.uuid4().hex[:8]
    clip = tf.caller_clip("caller_chest_pain")
    caller = tf.Caller(f"{target.ws_base}/api/v1/browser/conversation?session_id={session_id}")
    try:
        t0 = caller.stream(tf.browser_frames(clip.pcm + tf.silence(500)), 32)
        first_audio = caller.wait_for(tf.audible(tf.browser_audio), 5)
        final_audio = caller.wait_for(lambda r: r.json.get("type") == "audio_data" and r.json["is_final"], 6)
    finally:
        caller.close()
    messages = [r for r in caller.messages() if r.json is not None]
    for r in messages:
        assert r.json["topic"] == "session" and r.json["session_id"] == session_id and r.json["ts"].endswith("Z")
    call_id = messages[0].json["call_id"]
    partials = [r for r in messages if r.json["type"] == "event" and r.json["payload"].get("event_type") == "stt_partial"]
    assert partials and all(p.json["payload"]["data"]["is_final"] is False for p in partials)
    assert partials[0].json["payload"]["data"]["content"].startswith("caller speech")
    first_partial_ms = (partials[0].t - t0) * 1000 - clip.speech_start_ms
    assert 200 - 40 < first_partial_ms < 200 + 60  # stt_partial p50, from the first speech frame
    gaps = [(b.t - a.t) * 1000 for a, b in zip(partials, partials[1:])]
    assert all(250 < g < 350 for g in gaps), gaps
    finals = [r for r in messages if r.json["type"] == "event" and r.json["payload"].get("type") == "user"]
    assert len(finals) == 1 and finals[0].json["sender"] == "User" and finals[0].json["payload"]["status"] == "completed"
    assert partials[-1].t < finals[0].t  # no partial after end of turn
    words = [r for r in messages if r.json["type"] == "assistant_streaming"]
    assert "".join(w.json["payload"]["content"] for w in words) == AGENT_CLIPS[0]["text"]
    assert all(w.json["sender"] == "Assistant" for w in words)
    assert (words[-1].t - words[0].t) * 1000 == pytest.approx((len(words) - 1) * 1000 / 60, abs=30)  # 60 tokens/s
    assert finals[0].t < words[0].t < first_audio.t
    audio = [r for r in messages if r.json["type"] == "audio_data"]
    assert [a.json["frame_index"] for a in audio] == list(range(len(audio)))
    assert [a.json["is_final"] for a in audio] == [False] * (len(audio) - 1) + [True] and audio[-1] is final_audio
    assert all(a.json["sample_rate"] == 16000 and len(tf.browser_audio(a)) == 1280 for a in audio)
    truth = target.truth(session_id)  # metrics are reachable by session id too
    assert truth["call_id"] == call_id and truth["protocol"] == "browser"
    turn = truth["turns"][0]
    assert_fixed_turn(turn)
    assert turn["modelled"]["stt_partial"] == 200
    assert turn["first_partial_ms"] - turn["speech_start_ms"] == pytest.approx(200, abs=10)


# -- barge-in ------------------------------------------------------------------------------------------------


BARGE_PROTOCOLS = {
    "acs": ("/ws/call/stream?call_connection_id={call_id}", tf.acs_frames, 20, tf.acs_audio,
            lambda r: r.json.get("kind") == "StopAudio"),
    "twilio": ("/audio-stream", lambda pcm: tf.twilio_frames(pcm, "MZ9"), 20, tf.twilio_audio,
               lambda r: r.json.get("event") == "clear"),
    "browser": ("/ws/realtime?call_id={call_id}", tf.browser_frames, 32, tf.browser_audio,
                lambda r: r.json.get("type") == "control" and r.json.get("action") == "audio_stop"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", list(BARGE_PROTOCOLS))
def test_barge_in_stops_agent_audio(target: tf.TargetServer, protocol: str) -> None:
    path, encode, frame_ms, decode, is_stop = BARGE_PROTOCOLS[protocol]
    call_id = str(uuid.uuid4())
    clip = tf.caller_clip("caller_yes")
    caller = tf.Caller(target.ws_base + path.format(call_id=call_id))
    try:
        if protocol == "twilio":
            caller.send_text(json.dumps({"event": "start", "start": {
                "streamSid": "MZ9", "callSid": "CA" + uuid.uuid4().hex, "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"call_id": call_id}}}))
        caller.stream(encode(clip.pcm + tf.silence(400)), frame_ms)
        caller.wait_for(tf.audible(decode), 5)
        time.sleep(0.3)  # let the agent talk a little (not a synchronisation: audio is already flowing)
        interrupt_t0 = caller.stream(encode(tf.speech_only(clip, 640) + tf.silence(160)), frame_ms)
        stop = caller.wait_for(is_stop, 3)
        barge_ms = (stop.t - interrupt_t0) * 1000
        assert barge_ms < 40 + frame_ms + 60, barge_ms  # barge_in_min_ms of speech, one frame of slack
        stale = caller.messages(lambda r: decode(r) is not None and stop.t + 0.03 < r.t < stop.t + 0.5)
        assert not stale, f"{len(stale)} agent frames after the stop message"
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_id))["status"] == "ended" and t, 5, what="call end")
    first, second = truth["turns"][0], truth["turns"][1]
    assert first["barge_in_ms"] is not None and first["first_audio_sent_ms"] < first["barge_in_ms"]
    assert first["last_audio_sent_ms"] <= first["barge_in_ms"] and first["cancelled"] is False
    assert second["input"] == "speech"
    # the interruption's first speech frame starts the next turn; the stop goes out on the arrival of the
    # frame that brings consecutive speech to barge_in_min_ms (40 ms): the 2nd frame, one frame period later
    expected = (-(-40 // frame_ms) - 1) * frame_ms
    assert first["barge_in_ms"] - second["speech_start_ms"] == pytest.approx(expected, abs=15)


@pytest.mark.timeout(30)
def test_speech_before_first_audio_cancels_pending_reply(target: tf.TargetServer) -> None:
    call_id = str(uuid.uuid4())
    clip = tf.caller_clip("caller_yes")
    caller = tf.Caller(f"{target.ws_base}/api/v1/media/stream?call_connection_id={call_id}")
    try:
        # speech, 400 ms pause (EOT at 300 ms), speech again ~100 ms after EOT (< 260 ms reply latency)
        pcm = tf.speech_only(clip, 400) + tf.silence(400) + tf.speech_only(clip, 400) + tf.silence(500)
        caller.stream(tf.acs_frames(pcm), 20)
        caller.wait_for(tf.audible(tf.acs_audio), 5)
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_id))["status"] == "ended" and t, 5, what="call end")
    first, second = truth["turns"][0], truth["turns"][1]
    assert first["cancelled"] is True and first["first_audio_sent_ms"] is None
    assert second["speech_start_ms"] - first["eot_detected_ms"] == pytest.approx(100, abs=30)
    assert second["cancelled"] is False and second["agent_clip"] == AGENT_CLIPS[1]["id"]  # round-robin by turn
    assert abs(second["eot_to_first_audio_ms"] - FIXED_LOOP_MS) <= 15


# -- robustness --------------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_malformed_frames_are_counted_not_fatal(target: tf.TargetServer) -> None:
    before = target.health()["counters"]["malformed_frames"]
    call_id = str(uuid.uuid4())
    caller = tf.Caller(f"{target.ws_base}/api/v1/media/stream?call_connection_id={call_id}")
    try:
        for bad in ("{not json", json.dumps({"kind": "Bogus"}), json.dumps([1, 2]),
                    json.dumps({"kind": "AudioData", "audioData": {"data": "@@not base64@@"}}),
                    json.dumps({"kind": "AudioData"})):
            caller.send_text(bad)
        caller.send_binary(b"\x00\x01\x02")
        # upper-case keys still parse (case-insensitive), and the socket is alive
        caller.send_text(json.dumps({"Kind": "DtmfData", "DtmfData": {"Data": "9"}}))
        pcm = tf.caller_clip("caller_yes").pcm + tf.silence(400)
        frames = [json.dumps({"Kind": "AudioData", "AudioData": {"Data": json.loads(f)["audioData"]["data"]}})
                  for f in tf.acs_frames(pcm)]
        caller.stream(frames, 20)
        caller.wait_for(tf.audible(tf.acs_audio), 5)
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_id))["status"] == "ended" and t, 5, what="call end")
    assert truth["malformed_frames"] == 6 and truth["dtmf"] == ["9"] and len(truth["turns"]) == 1
    tw = tf.Caller(f"{target.ws_base}/audio-stream")
    br = tf.Caller(f"{target.ws_base}/ws/realtime")
    try:
        tw.send_binary(b"\x01\x02")
        tw.send_text(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        tw.send_text(json.dumps({"event": "nope"}))
        br.send_binary(b"\x00\x01\x02")  # odd length: not PCM16
        tf.wait_until(lambda: target.health()["counters"]["malformed_frames"] >= before + 10, 5,
                      what="malformed counter")
        assert not tw.closed.is_set() and not br.closed.is_set()
    finally:
        tw.close()
        br.close()
    assert target.health()["counters"]["malformed_frames"] == before + 10


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", ["/api/v1/media/stream", "/audio-stream", "/ws/realtime", "/ws/relay"])
def test_ping_is_answered_with_pong(target: tf.TargetServer, path: str) -> None:
    caller = tf.Caller(target.ws_base + path)
    try:
        sent = time.perf_counter()
        caller.ws.ping(b"rtt-1")
        pong = caller.wait_for(lambda r: r.opcode == 0xA, 3)
        assert pong.data == b"rtt-1" and pong.t - sent < 0.5
    finally:
        caller.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("relay_path", ["/api/v1/browser/dashboard/relay", "/ws/relay"])
def test_relay_receives_pipeline_events_via_redis(target: tf.TargetServer, relay_path: str) -> None:
    relay = tf.Caller(target.ws_base + relay_path)
    call_id = str(uuid.uuid4())
    browser = tf.Caller(f"{target.ws_base}/ws/realtime?call_id={call_id}")
    try:
        browser.send_text(json.dumps({"type": "text", "text": "I need a refill"}))
        final = browser.wait_for(lambda r: r.json.get("type") == "event" and r.json["payload"].get("type") == "user", 3)
        assert final.json["payload"]["content"] == "I need a refill"
        browser.wait_for(tf.audible(tf.browser_audio), 3)
        seen = tf.wait_until(
            lambda: {"call_start", "text_input", "transcript_final", "agent_audio_start"}
            <= {r.json["event"] for r in relay.messages(lambda r: r.json and r.json.get("call_id") == call_id)}, 5,
            what="relay events")
        assert seen
        event = relay.messages(lambda r: r.json and r.json.get("call_id") == call_id)[0].json
        assert event["type"] == "relay" and set(event) == {"type", "call_id", "event", "ts", "data"}
        browser.send_text(json.dumps({"type": "stop"}))
        assert browser.closed.wait(3) and browser.close_code == 1000
    finally:
        browser.close()
        relay.close()
    turn = target.truth(call_id)["turns"][0]
    assert turn["input"] == "text" and turn["modelled"]["stt_final"] == 0
    assert abs(turn["eot_to_first_audio_ms"] - 200) <= 15  # typed input skips STT


# -- capacity and faults -------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_llm_slots_queue_turns(slot_target: tf.TargetServer) -> None:
    health = slot_target.health()
    assert health["status"] == "healthy" and health["redis"] == "disabled" and health["llm_slots"]["size"] == 1
    call_ids = [f"slot-{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
    callers = [tf.Caller(f"{slot_target.ws_base}/ws/realtime?call_id={cid}") for cid in call_ids]
    try:
        for caller in callers:
            caller.send_text("hello")
        tf.wait_until(lambda: slot_target.health()["llm_slots"]["queued"] == 1, 2, interval=0.02,
                      what="one turn queued for the single LLM slot")
        for caller in callers:
            caller.wait_for(tf.audible(tf.browser_audio), 5)
    finally:
        for caller in callers:
            caller.close()
    queues = sorted(slot_target.truth(cid)["turns"][0]["llm_queue_ms"] for cid in call_ids)
    hold_ms = 150 + 30 / 60 * 1000  # llm_ttft + reply_tokens / tokens_per_s
    assert queues[0] < 10 and queues[1] == pytest.approx(hold_ms, abs=30), queues
    turns = sorted((slot_target.truth(cid)["turns"][0] for cid in call_ids), key=lambda t: t["llm_queue_ms"])
    # typed input: no STT; llm_ttft + tts_first_byte + stall_ms (+ the queue wait for the second turn)
    assert turns[0]["eot_to_first_audio_ms"] == pytest.approx(150 + 50 + 100, abs=15)
    assert turns[1]["eot_to_first_audio_ms"] == pytest.approx(turns[1]["llm_queue_ms"] + 300, abs=15)
    assert turns[0]["first_audio_sent_ms"] - turns[0]["tts_first_byte_ms"] == pytest.approx(100, abs=10)


@pytest.mark.timeout(30)
def test_http_faults_stall_and_socket_drops() -> None:
    server = tf.TargetServer("--latency-mode", "fixed", "--http-error-rate", "1", "--ws-drop-rate", "1",
                             "--stall-ms", "150")
    try:
        for path in ("/api/v1/calls/initiate", "/api/call"):
            response = server.http.post(path, json={"target_number": "+15551234567"})
            assert response.status_code == 503 and response.json() == {"detail": "injected fault"}
        started = time.perf_counter()
        assert server.http.get("/healthcheck").status_code == 200  # health is never failed, only stalled
        assert time.perf_counter() - started >= 0.15
        caller = tf.Caller(f"{server.ws_base}/api/v1/media/stream")
        opened = time.perf_counter()
        try:
            assert caller.closed.wait(6), "socket not dropped within 5 s"
            assert caller.close_code == 1011 and 0.45 <= time.perf_counter() - opened <= 5.5
        finally:
            caller.close()
        counters = server.health()["counters"]
        assert counters["dropped_sockets"] == 1 and counters["injected_http_errors"] >= 2
    finally:
        server.stop()


@pytest.mark.timeout(30)
def test_redis_outage_degrades_health_but_calls_continue() -> None:
    own_redis = tf.RedisServer()
    server = tf.TargetServer("--latency-mode", "fixed", "--redis-url", own_redis.url)
    try:
        assert server.health()["redis"] == "ok"
        own_redis.stop()
        health = server.health()
        assert health["status"] == "degraded" and health["redis"] == "down"
        call_id = str(uuid.uuid4())
        caller = tf.Caller(f"{server.ws_base}/ws/realtime?call_id={call_id}")
        try:
            caller.send_text("still there?")
            caller.wait_for(tf.audible(tf.browser_audio), 5)
        finally:
            caller.close()
        tf.wait_until(lambda: server.health()["counters"]["redis_errors"] > 0, 5, what="redis errors counted")
        assert server.truth(call_id)["turns"][0]["first_audio_sent_ms"] is not None
    finally:
        server.stop()
        own_redis.stop()
