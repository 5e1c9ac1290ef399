"""A tiny stand-alone voice agent that the tests aim voiceload at.

It shares no code with voiceload (standard library, Starlette and uvicorn only), so a test passing
against it shows voiceload speaks the real protocols, not just its own dialect. It serves the ACS
profile (artagent-v1 paths, ACS bidirectional media streaming) and the Twilio profile (twilio-media
paths, Twilio Media Streams). Each media socket runs its own energy VAD; when an utterance ends the
agent answers with 800 ms of a 440 Hz tone, paced in real time, as the mode says:
healthy (150 ms after the utterance), silent (800 ms of digital silence instead), every_other (odd
turns only), slow (2500 ms after), drops (like healthy; every media socket closed with 1011 after 3 s).
New caller speech cancels an unfinished reply; if its audio had begun (barge-in) the agent sends
StopAudio (ACS) or clear (Twilio).

    python tests/fixture_agent.py --port 8010 --mode healthy [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import binascii
import contextlib
import json
import math
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import quoteattr

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

MODES = ("healthy", "silent", "every_other", "slow", "drops")
FRAME_S = 0.020  # one media frame
SPEECH_RMS = 300.0  # a frame louder than this is speech
START_FRAMES = 3  # 60 ms of consecutive speech starts an utterance
END_FRAMES = 20  # 400 ms of silence after it ends the utterance
REPLY_MS, TONE_HZ, TONE_AMPLITUDE = 800, 440.0, 8000
REPLY_DELAY_S = {"slow": 2.5}  # every other mode: 0.15
DROP_AFTER_S = 3.0


def ulaw_encode(sample: int) -> int:
    """G.711 mu-law: one signed 16-bit sample to one byte."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(magnitude.bit_length() - 8, 0)  # position of the highest set bit above bit 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode(byte: int) -> int:
    """G.711 mu-law: one byte to one signed 16-bit sample."""
    byte = ~byte & 0xFF
    magnitude = (((byte & 0x0F) << 3) + 0x84) << ((byte >> 4) & 0x07)
    return 0x84 - magnitude if byte & 0x80 else magnitude - 0x84


ULAW_TO_PCM = [ulaw_decode(b) for b in range(256)]


def rms(samples: array.array) -> float:
    """Root mean square of PCM16 samples."""
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def reply_frames(rate: int, tone: bool, ulaw: bool) -> list[str]:
    """The 800 ms reply as base64 20 ms frames: a 440 Hz tone or digital silence, PCM16 LE or mu-law."""
    count = rate * REPLY_MS // 1000
    amplitude = TONE_AMPLITUDE if tone else 0
    pcm = [round(amplitude * math.sin(2 * math.pi * TONE_HZ * i / rate)) for i in range(count)]
    raw = bytes(ulaw_encode(s) for s in pcm) if ulaw else array.array("h", pcm).tobytes()
    step = len(raw) * 20 // REPLY_MS
    return [base64.b64encode(raw[i:i + step]).decode() for i in range(0, len(raw), step)]


REPLIES = {(proto, tone): reply_frames(16000 if proto == "acs" else 8000, tone, proto == "twilio")
           for proto in ("acs", "twilio") for tone in (True, False)}


class Vad:
    """Energy VAD over 20 ms frames: speech starts after 60 ms of loud frames, ends after 400 ms of quiet."""

    def __init__(self, rate: int) -> None:
        self.frame = rate // 50
        self.pending = array.array("h")
        self.speech_run = self.silence_run = 0
        self.speaking = False

    def feed(self, samples: array.array) -> list[str]:
        """Add samples; return the utterance boundaries found in the complete frames."""
        self.pending.extend(samples)
        events = []
        while len(self.pending) >= self.frame:
            frame, self.pending = self.pending[:self.frame], self.pending[self.frame:]
            loud = rms(frame) > SPEECH_RMS
            self.speech_run = self.speech_run + 1 if loud else 0
            self.silence_run = 0 if loud else self.silence_run + 1
            if not self.speaking and self.speech_run >= START_FRAMES:
                self.speaking = True
                events.append("start")
            elif self.speaking and self.silence_run >= END_FRAMES:
                self.speaking = False
                events.append("end")
        return events


def lower_keys(value: Any) -> dict:
    """A JSON object with lower-cased keys ({} for anything else), so key casing does not matter."""
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


class Call:
    """One media socket: decodes caller audio, runs the VAD, plays and cancels replies."""

    def __init__(self, ws: WebSocket, mode: str, proto: str) -> None:
        self.ws, self.mode, self.proto = ws, mode, proto
        self.vad = Vad(16000 if proto == "acs" else 8000)
        self.stream_sid: str | None = None
        self.turn = 0
        self.reply: asyncio.Task | None = None
        self.playing = False
        self.open = True

    async def send(self, message: dict) -> bool:
        """Send one JSON text frame; False (and stop sending) once the socket is gone."""
        if not self.open:
            return False
        try:
            await self.ws.send_text(json.dumps(message))
            return True
        except Exception:  # closed or closing socket: whatever the server stack raises, stop here
            self.open = False
            return False

    def audio_message(self, payload: str) -> dict:
        """The protocol's outbound audio frame."""
        if self.proto == "acs":
            data = {"data": payload, "timestamp": None, "participantRawID": None, "silent": False}
            return {"kind": "AudioData", "audioData": data}
        return {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}

    async def play(self, turn: int, frames: list[str], delay: float) -> None:
        """Wait, then stream the frames on absolute 20 ms deadlines; Twilio gets a mark at the end."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(delay)
        self.playing = True
        start = loop.time()
        for n, payload in enumerate(frames):
            await asyncio.sleep(max(0.0, start + n * FRAME_S - loop.time()))
            if not await self.send(self.audio_message(payload)):
                return
        self.playing = False
        if self.proto == "twilio":
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": f"reply-{turn}"}})

    async def cancel_reply(self) -> None:
        """Stop the reply task (pending or playing); barge-in message if its audio had begun."""
        task, self.reply = self.reply, None
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self.playing:
            self.playing = False
            await self.send({"kind": "StopAudio", "audioData": None, "stopAudio": {}} if self.proto == "acs"
                            else {"event": "clear", "streamSid": self.stream_sid})

    async def on_audio(self, samples: array.array) -> None:
        """Run the VAD; speech start cancels the reply, speech end schedules the next one."""
        for event in self.vad.feed(samples):
            await self.cancel_reply()
            if event == "end":
                self.turn += 1
                if self.mode == "every_other" and self.turn % 2 == 0:
                    continue
                frames = REPLIES[(self.proto, self.mode != "silent")]
                delay = REPLY_DELAY_S.get(self.mode, 0.15)
                self.reply = asyncio.create_task(self.play(self.turn, frames, delay))

    def caller_audio(self, message: dict) -> array.array | None:
        """PCM16 samples of one caller frame (keys lower-cased), None if it is not valid caller audio."""
        try:
            if self.proto == "acs":
                raw = base64.b64decode(lower_keys(message.get("audiodata")).get("data") or "", validate=True)
                ok = str(message.get("kind")).lower() == "audiodata" and len(raw) % 2 == 0
                return array.array("h", raw) if ok else None
            if message.get("event") == "start":
                self.stream_sid = message.get("streamsid") or lower_keys(message.get("start")).get("streamsid")
            payload = lower_keys(message.get("media")).get("payload") or ""
            raw = base64.b64decode(payload, validate=True) if message.get("event") == "media" else b""
            return array.array("h", (ULAW_TO_PCM[b] for b in raw))
        except (binascii.Error, ValueError, TypeError):
            return None

    async def receive(self) -> None:
        """Read caller frames until the caller hangs up; malformed frames are skipped."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.open = False
                return
            try:
                samples = self.caller_audio(lower_keys(json.loads(message.get("text") or "")))
            except (ValueError, RecursionError):  # not JSON (or absurdly nested): skip it
                continue
            if samples:
                await self.on_audio(samples)


def media_endpoint(mode: str, proto: str, issued: set[str] | None = None) -> Callable[[WebSocket], Awaitable[None]]:
    """The WebSocket handler for one protocol; in drops mode it hangs up after DROP_AFTER_S. With `issued`, an
    ACS socket whose call_connection_id the agent did not hand out is refused before the upgrade."""

    async def endpoint(ws: WebSocket) -> None:
        if issued is not None and ws.query_params.get("call_connection_id") not in issued:
            await ws.close(code=1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        await ws.accept()
        call = Call(ws, mode, proto)
        try:
            await asyncio.wait_for(call.receive(), DROP_AFTER_S if mode == "drops" else None)
        except asyncio.TimeoutError:
            call.open = False  # hanging up: no StopAudio/clear on the way out
            await call.cancel_reply()
            with contextlib.suppress(Exception):  # the caller may have left at the same moment
                await ws.close(code=1011)
        finally:
            await call.cancel_reply()

    return endpoint


async def health(request: Request) -> JSONResponse:
    """Liveness probe for both profiles."""
    return JSONResponse({"status": "ok"})


def initiate_endpoint(issued: set[str] | None) -> Callable[[Request], Awaitable[JSONResponse]]:
    """ACS: start an outbound call (only a call id comes back, remembered in `issued` when given)."""

    async def initiate(request: Request) -> JSONResponse:
        call_id = str(uuid.uuid4())
        if issued is not None:
            issued.add(call_id)
        return JSONResponse({"call_id": call_id})

    return initiate


async def inbound(request: Request) -> Response:
    """Twilio: answer an inbound call with TwiML that connects a media stream back to this server."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    call_sid = form.get("CallSid", [""])[0]
    url = f"ws://{request.headers.get('host', '127.0.0.1')}/audio-stream"
    twiml = ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
             f'<Stream url={quoteattr(url)}><Parameter name="callSid" value={quoteattr(call_sid)}/></Stream>'
             '</Connect></Response>')
    return Response(twiml, media_type="text/xml")


def build_app(mode: str, own_call_ids: bool = False) -> Starlette:
    """The agent's Starlette app for one mode; every path not listed here answers 404. With `own_call_ids` the
    ACS media socket takes only call ids that /api/v1/calls/initiate handed out."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    issued: set[str] | None = set() if own_call_ids else None
    return Starlette(routes=[
        Route("/api/v1/health", health, methods=["GET"]),
        Route("/api/v1/calls/initiate", initiate_endpoint(issued), methods=["POST"]),
        WebSocketRoute("/api/v1/media/stream", media_endpoint(mode, "acs", issued)),
        Route("/healthcheck", health, methods=["GET"]),
        Route("/calls/inbound", inbound, methods=["POST"]),
        WebSocketRoute("/audio-stream", media_endpoint(mode, "twilio")),
    ])


def main() -> None:
    """Command line: serve one mode on HOST:PORT until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="healthy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--own-call-ids", action="store_true", help="refuse ACS media sockets for call ids not handed out")
    args = parser.parse_args()
    uvicorn.run(build_app(args.mode, args.own_call_ids), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
