"""A local stand-in for Azure Speech: the Speech SDK's WebSocket protocol ("USP") on the reference target.

Point the real SDK at it with `SpeechConfig(host="ws://127.0.0.1:PORT", subscription="local")` (as for
Speech containers). Two routes:

- `/speech/recognition/conversation/cognitiveservices/v1` (speech to text). The SDK sends `speech.config`,
  `speech.context` (text) and `audio` (binary: a RIFF header first, then PCM16 16 kHz, an empty payload at
  end of stream). Each received 20 ms frame goes through the target's energy VAD at its arrival (RMS >=
  vad_threshold, end of utterance after eot_silence_ms of silence, exactly as target/pipeline.py). We send
  `turn.start` (first audio), `speech.startDetected` (speech start), `speech.hypothesis` (first one the
  modelled stt_partial delay after the arrival of the first speech frame, then every 300 ms while speech
  lasts), `speech.endDetected` (end of utterance), `speech.phrase` (RecognitionStatus Success, the modelled
  stt_final delay after end of utterance was detected) and, at end of stream, `turn.end`. Offsets and
  durations are 100-ns ticks of audio time.
- `/cognitiveservices/websocket/v1` (text to speech). On each `ssml` message, the modelled tts_first_byte
  delay after its arrival: `turn.start`, binary `audio` messages with an agent clip as PCM16 in the output
  format `synthesis.context` asked for (raw-* or riff-* PCM at 8/16/24/48 kHz), then `turn.end`.

Text messages are `Name:value` header lines, a blank line, then the body; binary messages are a 2-byte
big-endian header length, the header lines, then the payload.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import struct
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI
from starlette.websockets import WebSocket, WebSocketDisconnect

from target.pipeline import PARTIAL_INTERVAL_S, perf, sleep_until
from target.vad import Endpointer, VadEvent
from audio.pcm import pcm16_rms
from audio.fixtures import load_clips

if TYPE_CHECKING:
    from target.context import AppContext

RECOGNITION_PATH = "/speech/recognition/conversation/cognitiveservices/v1"
SYNTHESIS_PATH = "/cognitiveservices/websocket/v1"
SAMPLE_RATE = 16000
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16: the VAD's frame
TICKS_PER_MS = 10_000  # USP offsets/durations are in 100-ns ticks
TTS_CHUNK_MS = 100  # audio per binary message sent to the synthesizer
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
log = logging.getLogger("target.speech")


# -- wire format ----------------------------------------------------------------------------------------


def _timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_headers(block: str) -> dict[str, str]:
    """`Name:value` lines (CRLF separated) as a dict with lower-case names."""
    headers = {}
    for line in block.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def parse_text(text: str) -> tuple[dict[str, str], str]:
    head, _, body = text.partition("\r\n\r\n")
    return parse_headers(head), body


def parse_binary(data: bytes) -> tuple[dict[str, str], bytes]:
    if len(data) < 2:
        return {}, b""
    size = int.from_bytes(data[:2], "big")
    return parse_headers(data[2 : 2 + size].decode("utf-8", "replace")), data[2 + size :]


def text_message(path: str, request_id: str, body: Any, content_type: str = "application/json; charset=utf-8") -> str:
    payload = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return (f"X-RequestId:{request_id}\r\nContent-Type:{content_type}\r\nX-Timestamp:{_timestamp()}\r\n"
            f"Path:{path}\r\n\r\n{payload}")


def binary_message(path: str, request_id: str, payload: bytes, content_type: str) -> bytes:
    head = (f"X-RequestId:{request_id}\r\nContent-Type:{content_type}\r\nX-Timestamp:{_timestamp()}\r\n"
            f"Path:{path}\r\n").encode()
    return len(head).to_bytes(2, "big") + head + payload


def strip_riff(data: bytes) -> bytes:
    """The PCM after a RIFF/WAVE header's `data` chunk header (the SDK's first audio message is a bare header)."""
    if not data.startswith(b"RIFF") or data[8:12] != b"WAVE":
        return data
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk_id == b"data":
            return data[pos + 8 :]
        pos += 8 + size + (size & 1)
    return b""


def riff_header(sample_rate: int, n_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", n_bytes))


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    if src_rate == dst_rate:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n_out = int(round(len(samples) * dst_rate / src_rate))
    out = np.interp(np.arange(n_out) * src_rate / dst_rate, np.arange(len(samples)), samples)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


_FORMAT = re.compile(r"^(raw|riff)-(\d+)khz-16bit-mono-pcm$")


def output_format(name: str | None) -> tuple[bool, int]:
    """(with RIFF header, sample rate) for a PCM output format name; unknown formats get raw 16 kHz."""
    match = _FORMAT.match((name or "").lower())
    if not match:
        return False, SAMPLE_RATE
    return match.group(1) == "riff", int(match.group(2)) * 1000


# -- shared helpers ---------------------------------------------------------------------------------------


class _Socket:
    """Serialised sends on one accepted socket; False once the peer is gone."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.open = True

    async def send(self, message: str | bytes) -> bool:
        if not self.open:
            return False
        try:
            async with self.lock:
                if isinstance(message, bytes):
                    await self.ws.send_bytes(message)
                else:
                    await self.ws.send_text(message)
            return True
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.open = False
            return False


async def _accept(ws: WebSocket) -> None:
    offered = ws.headers.get("sec-websocket-protocol", "")
    await ws.accept(subprotocol="USP" if "usp" in offered.lower() else None)


def _ctx(ws: WebSocket) -> AppContext:
    return ws.app.state.ctx


def _caller_texts(manifest: str) -> list[tuple[float, str]]:
    try:
        return [(c.speech_end_ms - c.speech_start_ms, c.text) for c in load_clips(Path(manifest)) if c.role == "caller"]
    except (OSError, ValueError, KeyError):
        return []


def _transcript(texts: list[tuple[float, str]], spoken_ms: float) -> str:
    """The caller fixture whose speech length is nearest to what was heard (the stand-in does no real ASR)."""
    if not texts:
        return f"caller speech {spoken_ms / 1000:.2f} s"
    return min(texts, key=lambda t: abs(t[0] - spoken_ms))[1]


# -- recognition ----------------------------------------------------------------------------------------


class _Recognition:
    def __init__(self, ws: WebSocket) -> None:
        self.ctx = _ctx(ws)
        s = self.ctx.settings
        self.sock = _Socket(ws)
        self.threshold = s.vad_threshold
        self.endpointer = Endpointer(s.eot_silence_ms)
        self.texts = _caller_texts(s.audio_manifest)
        self.request_id = uuid.uuid4().hex
        self.turn_started = False
        self.pending = b""
        self.audio_ms = 0.0  # audio time of the next frame
        self.speech_start_ms = 0.0  # audio time of the current utterance's first speech frame
        self.speech_t = 0.0  # its arrival (perf)
        self.last_speech_end_ms = 0.0
        self.partials: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def send(self, path: str, body: Any) -> bool:
        return await self.sock.send(text_message(path, self.request_id, body))

    async def run(self) -> None:
        ws = self.sock.ws
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                headers, _ = parse_text(message["text"])
                if headers.get("path", "").lower() == "speech.context" and headers.get("x-requestid"):
                    self.request_id = headers["x-requestid"]
                continue
            data = message.get("bytes") or b""
            headers, payload = parse_binary(data)
            if headers.get("path", "").lower() != "audio":
                continue
            if headers.get("x-requestid"):
                self.request_id = headers["x-requestid"]
            if not self.turn_started:
                self.turn_started = True
                await self.send("turn.start", {"context": {"serviceTag": uuid.uuid4().hex}})
            if not payload:  # end of stream
                await self.end_of_stream()
                continue
            await self.audio(strip_riff(payload))

    async def audio(self, pcm: bytes) -> None:
        self.pending += pcm
        usable = len(self.pending) - len(self.pending) % FRAME_BYTES
        frames, self.pending = self.pending[:usable], self.pending[usable:]
        for pos in range(0, len(frames), FRAME_BYTES):
            await self.frame(frames[pos : pos + FRAME_BYTES])

    async def frame(self, frame: bytes) -> None:
        now = perf()
        start_ms = self.audio_ms
        self.audio_ms += len(frame) * 1000.0 / (SAMPLE_RATE * 2)
        event = self.endpointer.feed(pcm16_rms(frame) >= self.threshold, 20.0)
        if event is VadEvent.SPEECH_START:
            self.speech_start_ms, self.speech_t = start_ms, now
            await self.send("speech.startDetected", {"Offset": int(start_ms * TICKS_PER_MS)})
            self.partials = self._spawn(self._partials(now, start_ms))
        elif event is VadEvent.END_OF_TURN:
            await self.utterance_end(now, self.audio_ms - self.ctx.settings.eot_silence_ms)

    async def utterance_end(self, now: float, speech_end_ms: float) -> None:
        if self.partials is not None:
            self.partials.cancel()
            self.partials = None
        start_ms = self.speech_start_ms
        self.last_speech_end_ms = speech_end_ms
        await self.send("speech.endDetected", {"Offset": int(speech_end_ms * TICKS_PER_MS)})
        delay = self.ctx.latency.draw("stt_final")
        self._spawn(self._phrase(now + delay / 1000.0, start_ms, speech_end_ms))

    async def _phrase(self, due: float, start_ms: float, end_ms: float) -> None:
        await sleep_until(due)
        text = _transcript(self.texts, end_ms - start_ms)
        await self.send("speech.phrase", {"RecognitionStatus": "Success", "DisplayText": text,
                                          "Offset": int(start_ms * TICKS_PER_MS),
                                          "Duration": int((end_ms - start_ms) * TICKS_PER_MS)})

    async def _partials(self, speech_t: float, start_ms: float) -> None:
        due = speech_t + self.ctx.latency.draw("stt_partial") / 1000.0
        while True:
            await sleep_until(due)
            if not self.endpointer.in_speech:
                return
            heard_ms = max(20.0, self.audio_ms - start_ms)
            longer = [t for t in self.texts if t[0] >= heard_ms - 20.0]  # fixtures still consistent with what was heard
            words = _transcript(longer or self.texts, min(t[0] for t in longer) if longer else heard_ms).split()
            # a growing prefix of the transcript, about 3 words per second of speech heard so far
            text = " ".join(words[: max(1, min(len(words), int(heard_ms / 330) + 1))])
            await self.send("speech.hypothesis", {"Text": text, "Offset": int(start_ms * TICKS_PER_MS),
                                                  "Duration": int(heard_ms * TICKS_PER_MS)})
            due += PARTIAL_INTERVAL_S

    async def end_of_stream(self) -> None:
        if self.endpointer.in_speech:  # the audio ended mid-utterance: finalise what was heard
            self.endpointer.reset()
            await self.utterance_end(perf(), self.audio_ms)
        pending = [t for t in self.tasks if t is not self.partials]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.send("turn.end", {})
        self.turn_started = False

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


async def speech_recognition(ws: WebSocket) -> None:
    await _accept(ws)
    session = _Recognition(ws)
    try:
        await session.run()
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        session.close()


# -- synthesis --------------------------------------------------------------------------------------------


_AGENT_PCM: dict[str, list[bytes]] = {}


def _agent_pcm(manifest: str) -> list[bytes]:
    if manifest not in _AGENT_PCM:
        clips = [c for c in load_clips(Path(manifest)) if c.role == "agent" and c.sample_rate == SAMPLE_RATE]
        _AGENT_PCM[manifest] = [c.pcm for c in clips] or [b"\x00\x00" * SAMPLE_RATE]
    return _AGENT_PCM[manifest]


async def speech_synthesis(ws: WebSocket) -> None:
    await _accept(ws)
    ctx = _ctx(ws)
    sock = _Socket(ws)
    clips = _agent_pcm(ctx.settings.audio_manifest)
    fmt_name: str | None = None
    served = 0
    tasks: set[asyncio.Task[None]] = set()

    async def synthesize(request_id: str, arrived: float, pcm16k: bytes, fmt: str | None) -> None:
        await sleep_until(arrived + ctx.latency.draw("tts_first_byte") / 1000.0)
        riff, rate = output_format(fmt)
        pcm = resample_pcm16(pcm16k, SAMPLE_RATE, rate)
        if not await sock.send(text_message("turn.start", request_id, {"webrtc": {"connectionString": ""},
                                                                       "context": {"serviceTag": uuid.uuid4().hex}})):
            return
        chunk = rate * 2 * TTS_CHUNK_MS // 1000
        content_type = "audio/x-wav" if riff else "audio/raw"
        first = riff_header(rate, len(pcm)) if riff else b""
        for pos in range(0, len(pcm), chunk):
            if not await sock.send(binary_message("audio", request_id, (first if pos == 0 else b"") + pcm[pos : pos + chunk],
                                                  content_type)):
                return
            await asyncio.sleep(0)
        await sock.send(text_message("audio.metadata", request_id, {"Metadata": [{"Type": "SessionEnd", "Data": {
            "Offset": len(pcm) * TICKS_PER_MS * 1000 // (rate * 2)}}]}))
        await sock.send(text_message("turn.end", request_id, {}))

    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            arrived = perf()
            headers, body = parse_text(text)
            path = headers.get("path", "").lower()
            if path == "synthesis.context":
                try:
                    fmt_name = json.loads(body)["synthesis"]["audio"]["outputFormat"]
                except (ValueError, KeyError, TypeError):
                    pass
            elif path == "ssml":
                clip = clips[served % len(clips)]
                served += 1
                task = asyncio.create_task(synthesize(headers.get("x-requestid") or uuid.uuid4().hex, arrived, clip, fmt_name))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        for task in list(tasks):
            task.cancel()


def register_speech_routes(app: FastAPI) -> None:
    """Add the Speech SDK's recognition and synthesis WebSocket routes to the target app."""
    app.add_api_websocket_route(RECOGNITION_PATH, speech_recognition)
    app.add_api_websocket_route(SYNTHESIS_PATH, speech_synthesis)
