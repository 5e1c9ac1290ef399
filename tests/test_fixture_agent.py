"""The stand-alone fixture agent (tests/fixture_agent.py) against a plain websocket-client caller.

The caller streams the recorded caller clips in real time (20 ms frames on absolute deadlines, silence
between them, like a phone line), and records every frame the agent sends with its arrival time.
"""

from __future__ import annotations

import array
import base64
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
import xml.etree.ElementTree as ET
from collections import deque
from pathlib import Path

import pytest
import websocket

from tests import fixture_agent as agent

REPO = Path(__file__).resolve().parent.parent
AUDIO = REPO / "scenarios" / "audio"
AUDIBLE_RMS = 1000.0
FRAME_S = 0.020


def caller_clip(clip_id: str) -> bytes:
    """A caller clip from the manifest as 16 kHz mono PCM16 LE."""
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    clip = next(c for c in manifest["clips"] if c["id"] == clip_id and c["role"] == "caller")
    with wave.open(str(AUDIO / clip["file"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        return wav.readframes(wav.getnframes())


def speech_only(pcm: bytes) -> bytes:
    """The clip from its first loud 20 ms frame on (no leading silence), for an immediate barge-in."""
    for i in range(0, len(pcm), 640):
        if rms(array.array("h", pcm[i:i + 640])) > AUDIBLE_RMS:
            return pcm[i:]
    raise AssertionError("clip has no speech")


def rms(samples: array.array) -> float:
    """Root mean square of PCM16 samples."""
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of one request; error statuses are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("content-type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read().decode()


class Caller:
    """A websocket-client caller: one thread streams 20 ms frames in real time (queued speech, otherwise
    silence), another records what the agent sends as (arrival time, kind, rms or name)."""

    def __init__(self, url: str, twilio: bool = False, upper_keys: bool = False) -> None:
        self.twilio, self.upper_keys = twilio, upper_keys
        self.ws = websocket.create_connection(url, timeout=1)
        self.opened = time.monotonic()
        self.queue: deque[bytes] = deque()  # PCM16 16 kHz 20 ms frames still to send
        self.cond = threading.Condition(threading.RLock())
        self.events: list[tuple[float, str, object]] = []
        self.spoken = 0  # speech frames sent so far
        self.speech_end = 0.0  # when the last speech frame was sent
        self.closed: tuple[float, int | None] | None = None
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.sids: set[str | None] = set()  # streamSids on the agent's Twilio messages
        self.running = True
        if twilio:
            self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            self.send({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
                       "start": {"streamSid": self.stream_sid, "callSid": "CA" + uuid.uuid4().hex, "tracks": ["inbound"],
                                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        else:
            self.send({"kind": "AudioMetadata", "audioMetadata": {"subscriptionId": str(uuid.uuid4()),
                       "encoding": "PCM", "sampleRate": 16000, "channels": 1, "length": 640}})
        self.threads = [threading.Thread(target=self._send_loop, daemon=True),
                        threading.Thread(target=self._receive_loop, daemon=True)]
        for thread in self.threads:
            thread.start()

    def send(self, message: dict | str) -> None:
        """One text frame (a dict is sent as JSON)."""
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def frame(self, pcm: bytes, chunk: int) -> dict:
        """One caller audio frame in the protocol's format."""
        if self.twilio:
            samples = array.array("h", pcm)[::2]  # 16 kHz to 8 kHz; speech energy survives, that is all the VAD needs
            payload = base64.b64encode(bytes(agent.ulaw_encode(s) for s in samples)).decode()
            return {"event": "media", "sequenceNumber": str(chunk + 2), "streamSid": self.stream_sid,
                    "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20), "payload": payload}}
        data = {"timestamp": "2024-01-01T00:00:00Z", "participantRawID": "8:acs:caller",
                "data": base64.b64encode(pcm).decode(), "silent": False}
        return {"Kind": "AudioData", "AudioData": data} if self.upper_keys else {"kind": "AudioData", "audioData": data}

    def _send_loop(self) -> None:
        start, n = time.monotonic(), 0
        while self.running:
            time.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))
            with self.cond:
                pcm = self.queue.popleft() if self.queue else b"\x00" * 640
            try:
                self.send(self.frame(pcm, n))
            except (websocket.WebSocketException, OSError):
                return
            if pcm.count(0) != len(pcm):
                with self.cond:
                    self.spoken += 1
                    self.speech_end = time.monotonic()
                    self.cond.notify_all()
            n += 1

    def _receive_loop(self) -> None:
        while self.running:
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                opcode, data = websocket.ABNF.OPCODE_CLOSE, b""
            now = time.monotonic()
            with self.cond:
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.closed = (now, int.from_bytes(data[:2], "big") if len(data) >= 2 else None)
                    self.cond.notify_all()
                    return
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    try:
                        self.events.append((now, *self._describe(json.loads(data))))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        self.events.append((now, "malformed", data))
                    self.cond.notify_all()

    def _describe(self, message: dict) -> tuple[str, object]:
        """(kind, detail) of an agent message: ('audio', rms), ('stop', None), ('mark', name) ..."""
        if self.twilio:
            event = message.get("event")
            self.sids.add(message.get("streamSid"))
            if event == "media":
                raw = base64.b64decode(message["media"]["payload"])
                return "audio", rms(array.array("h", (agent.ulaw_decode(b) for b in raw)))
            return {"clear": "stop"}.get(event, event), message.get("mark", {}).get("name")
        if message.get("kind") == "AudioData":
            return "audio", rms(array.array("h", base64.b64decode(message["audioData"]["data"])))
        return {"StopAudio": "stop"}.get(message.get("kind"), message.get("kind")), None

    def say(self, pcm: bytes, wait: bool = True) -> float:
        """Queue speech; with wait, return when its last frame has been sent (that time)."""
        frames = [pcm[i:i + 640].ljust(640, b"\x00") for i in range(0, len(pcm), 640)]
        with self.cond:
            target = self.spoken + sum(1 for f in frames if f.count(0) != len(f))
            self.queue.extend(frames)
            if wait:
                assert self.cond.wait_for(lambda: self.spoken >= target, timeout=len(frames) * FRAME_S + 5)
            return self.speech_end

    def audio(self, after: float = 0.0) -> list[tuple[float, float]]:
        """(arrival time, rms) of the agent audio frames received after a time."""
        with self.cond:
            return [(t, level) for t, kind, level in self.events if kind == "audio" and t > after]

    def wait_event(self, predicate, timeout: float) -> tuple | None:
        """The first received event matching predicate(time, kind, detail), waiting up to timeout."""
        def first():
            return next((e for e in self.events if predicate(*e)), None)
        with self.cond:
            self.cond.wait_for(lambda: first() is not None or self.closed is not None, timeout=timeout)
            return first()

    def wait_audio_frames(self, count: int, after: float, timeout: float) -> list[tuple[float, float]]:
        """The agent audio frames received after a time, once there are count of them (or timeout)."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.audio(after)) >= count or self.closed is not None, timeout=timeout)
            return self.audio(after)

    def wait_closed(self, timeout: float) -> tuple[float, int | None] | None:
        """(time, close code) once the agent has closed the socket."""
        with self.cond:
            self.cond.wait_for(lambda: self.closed is not None, timeout=timeout)
            return self.closed

    def close(self) -> None:
        """Hang up: stop streaming, send a close frame, let both threads end."""
        self.running = False
        try:
            self.ws.send_close()
        except (websocket.WebSocketException, OSError):
            pass
        for thread in self.threads:
            thread.join(timeout=3)
        self.ws.shutdown()


@pytest.fixture
def call():
    """Open Callers; all are hung up at teardown."""
    callers: list[Caller] = []

    def open_call(url: str, **kwargs) -> Caller:
        callers.append(Caller(url, **kwargs))
        return callers[-1]

    yield open_call
    for caller in callers:
        caller.close()


def audible_after(t0: float):
    """Predicate: an audible agent audio frame that arrived after t0."""
    return lambda t, kind, level: kind == "audio" and t > t0 and level > AUDIBLE_RMS


def test_mulaw_codec_is_g711():
    assert [agent.ulaw_encode(s) for s in (0, -1, 32767, -32768)] == [0xFF, 0x7F, 0x80, 0x00]
    assert [agent.ulaw_decode(b) for b in (0xFF, 0x80, 0x00)] == [0, 32124, -32124]
    for s in range(-32768, 32768, 7):
        assert abs(agent.ulaw_decode(agent.ulaw_encode(s)) - s) <= max(abs(s) / 16, 8)  # half a quantization step
    audioop = pytest.importorskip("audioop")  # the stdlib reference, gone from Python 3.13
    assert [agent.ulaw_decode(b) for b in range(256)] == list(array.array("h", audioop.ulaw2lin(bytes(range(256)), 2)))
    positive = array.array("h", range(0, 32768))  # audioop floors negatives when it drops 2 bits; G.711 is sign-magnitude
    assert bytes(agent.ulaw_encode(s) for s in positive) == audioop.lin2ulaw(positive.tobytes(), 2)


def test_healthy_acs_answers_with_a_tone_after_the_utterance(start_agent, call):
    port = start_agent("healthy").port
    caller = call(f"ws://127.0.0.1:{port}/api/v1/media/stream?call_connection_id=anything", upper_keys=True)
    for junk in ("{not json", "[1, 2]", '{"kind": "AudioData", "audioData": {"data": "!!not base64!!"}}',
                 '{"kind": "AudioData", "audioData": {"data": "AAE="}}', '{"kind": "DtmfData", "dtmfData": {"data": "5"}}'):
        caller.send(junk)  # malformed or irrelevant frames are skipped, the call goes on
    caller.ws.send_binary(b"\x01\x02")
    end = caller.say(caller_clip("caller_yes"))
    first = caller.wait_event(audible_after(0), timeout=3)
    assert first is not None, f"no audible agent audio: {caller.events[-5:]}"
    assert end + 0.3 < first[0] < end + 1.0, f"first audible frame {first[0] - end:.3f} s after the end of speech"
    reply = caller.wait_audio_frames(40, after=0, timeout=2)  # 800 ms of 20 ms frames
    assert len(reply) == 40 and all(level > AUDIBLE_RMS for _, level in reply), reply
    assert reply[-1][0] - reply[0][0] > 0.6, "800 ms of reply arrived in a burst, not paced in real time"


def test_silent_acs_sends_frames_but_never_a_sound(start_agent, call):
    port = start_agent("silent").port
    caller = call(f"ws://127.0.0.1:{port}/api/v1/media/stream?call_connection_id=x")
    end = caller.say(caller_clip("caller_yes"))
    frames = caller.wait_audio_frames(40, after=0, timeout=3)
    assert len(frames) == 40, "the silent agent did not send its 800 ms of frames"
    assert frames[0][0] > end and max(level for _, level in frames) == 0.0


def test_every_other_twilio_answers_odd_turns_only(start_agent, call):
    port = start_agent("every_other").port
    caller = call(f"ws://127.0.0.1:{port}/audio-stream", twilio=True)
    end1 = caller.say(caller_clip("caller_yes"))
    assert caller.wait_event(audible_after(end1), timeout=2) is not None, "turn 1 got no audible reply"
    assert caller.wait_event(lambda t, kind, name: kind == "mark" and name == "reply-1", timeout=2) is not None
    end2 = caller.say(caller_clip("caller_cholesterol"))
    assert caller.wait_audio_frames(1, after=end2, timeout=2.5) == [], "turn 2 got audio"
    assert caller.closed is None and caller.sids == {caller.stream_sid}
    assert "malformed" not in {kind for _, kind, _ in caller.events}


def test_drops_closes_the_socket_after_three_seconds(start_agent, call):
    port = start_agent("drops").port
    caller = call(f"ws://127.0.0.1:{port}/api/v1/media/stream?call_connection_id=x")
    caller.say(caller_clip("caller_yes"), wait=False)
    closed = caller.wait_closed(timeout=6)
    assert closed is not None, "the agent never closed the socket"
    assert 2.5 <= closed[0] - caller.opened <= 4.5 and closed[1] == 1011, closed


def test_barge_in_stops_the_reply(start_agent, call):
    port = start_agent("healthy").port
    caller = call(f"ws://127.0.0.1:{port}/api/v1/media/stream?call_connection_id=x")
    end = caller.say(caller_clip("caller_yes"))
    first = caller.wait_event(audible_after(end), timeout=2)
    assert first is not None
    caller.say(speech_only(caller_clip("caller_cholesterol")), wait=False)  # talk over the reply
    stop = caller.wait_event(lambda t, kind, _: kind == "stop", timeout=2)
    assert stop is not None, "no StopAudio on barge-in"
    assert stop[0] < first[0] + 0.8, "StopAudio only after the reply had finished"
    played = [t for t, _ in caller.audio(after=first[0] - 0.001) if t <= stop[0]]
    assert len(played) < 30, f"{len(played)} reply frames played despite the barge-in"


def test_routes(start_agent):
    port = start_agent("healthy").port
    base = f"http://127.0.0.1:{port}"
    assert http("GET", f"{base}/healthcheck")[::2] == (200, '{"status":"ok"}')
    status, _, body = http("POST", f"{base}/api/v1/calls/initiate", json.dumps({"target_number": "+15550100"}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200 and uuid.UUID(json.loads(body)["call_id"]).version == 4
    form = urllib.parse.urlencode({"From": "+15550100", "To": "+15550199", "CallSid": "CA123"}).encode()
    status, ctype, body = http("POST", f"{base}/calls/inbound", form,
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and ctype.startswith("text/xml")
    stream = ET.fromstring(body).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == f"ws://127.0.0.1:{port}/audio-stream"
    assert stream.find("Parameter").attrib == {"name": "callSid", "value": "CA123"}
    for path in ("/api/v1/browser/conversation", "/docs", "/api/v1/calls/answer", "/openapi.json"):
        for method in ("GET", "OPTIONS"):
            assert http(method, base + path)[0] == 404, (method, path)
