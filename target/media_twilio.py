"""Twilio Media Streams socket (/audio-stream): JSON events, mu-law 8 kHz audio.

Caller -> server: connected, start (streamSid, callSid, customParameters), media (base64 mu-law),
dtmf, mark (echo), stop. Server -> caller: media (40 ms = 320 B mu-law at the default frame size),
clear on barge-in, mark `turn-N` after each reply's last frame. Call id = customParameters.call_id
or the callSid.
"""

from __future__ import annotations

import json
import uuid

from starlette.websockets import WebSocket

from target.agent_audio import AgentClip
from target.pipeline import Call, MediaSender, decode_base64_audio
from audio.pcm import mulaw_decode

SAMPLE_RATE = 8000


class TwilioSender(MediaSender):
    protocol = "twilio"

    def __init__(self, ws: WebSocket) -> None:
        super().__init__(ws)
        self.stream_sid = ""
        self._head = ""

    def set_stream(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        self._head = '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'

    def audio_frame(self, clip: AgentClip, index: int) -> str:
        return self._head + clip.twilio[index]

    async def stop_audio(self) -> None:
        await self.send(json.dumps({"event": "clear", "streamSid": self.stream_sid}))

    async def reply_done(self, turn: int) -> None:
        await self.send(json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": f"turn-{turn}"}}))


def _start(call: Call, sender: TwilioSender, start: object) -> None:
    if not isinstance(start, dict):
        call.malformed()
        return
    params = start.get("customParameters") or {}
    call_sid = start.get("callSid") or "CA" + uuid.uuid4().hex
    call_id = (params.get("call_id") if isinstance(params, dict) else None) or call_sid
    sender.set_stream(str(start.get("streamSid") or "MZ" + uuid.uuid4().hex))
    if not call.started:
        session_id = params.get("session_id") if isinstance(params, dict) else None
        call.begin(str(call_id), session_id)


async def handle_text(call: Call, sender: TwilioSender, text: str) -> bool:
    """Dispatch one Twilio event; False when the stream has stopped."""
    try:
        message = json.loads(text)
    except ValueError:
        call.malformed()
        return True
    event = message.get("event") if isinstance(message, dict) else None
    if event == "media":
        media = message.get("media")
        audio = decode_base64_audio(media.get("payload") if isinstance(media, dict) else None)
        if audio is None:
            call.malformed()
            return True
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return True
        if not call.started:
            _start(call, sender, {})
        await call.audio(mulaw_decode(audio), len(audio), SAMPLE_RATE)
    elif event == "start":
        _start(call, sender, message.get("start"))
    elif event == "dtmf":
        dtmf = message.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if digit is None:
            call.malformed()
        else:
            call.dtmf(str(digit))
    elif event in ("connected", "mark"):
        return True
    elif event == "stop":
        return False
    else:
        call.malformed()
    return True


async def twilio_media(ws: WebSocket) -> None:
    """One Twilio media stream, until `stop`, hang-up or an injected drop."""
    await ws.accept()
    sender = TwilioSender(ws)
    call = Call(ws.app.state.ctx, sender, ws.url.path)
    try:
        while True:  # ends with the socket or the stop event
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                call.malformed()
            elif not await handle_text(call, sender, text):
                await sender.close(1000)
                break
    finally:
        await call.end()
