"""Browser conversation socket (/api/v1/browser/conversation, /ws/realtime).

Caller -> server: binary PCM16 mono 16 kHz frames of any even size (the web front end sends 1024 B),
text `{"type":"stop"}` ends the call (server closes 1000), any other text frame is typed user input.
Server -> caller: JSON envelopes {"type","topic":"session","session_id","call_id","sender","ts",...}:
stt_partial events, the final user transcript (the recognized fixture utterance, target.recognizer, or
"caller speech N s"), assistant_streaming words (the text of the reply clip being spoken), audio_data
frames and `control/audio_stop` on barge-in.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.websockets import WebSocket

from target.agent_audio import AgentClip
from target.ground_truth import utc_now_iso
from target.pipeline import Call, MediaSender

SAMPLE_RATE = 16000


class BrowserSender(MediaSender):
    protocol = "browser"
    streams_text = True

    def bind(self, call_id: str, session_id: str) -> None:
        super().bind(call_id, session_id)
        self._audio_head = ('{"type":"audio_data","topic":"session","session_id":' + json.dumps(session_id)
                            + ',"call_id":' + json.dumps(call_id) + ',"sender":"Assistant","ts":"')

    def envelope(self, kind: str, sender: str, payload: Any, **extra: Any) -> str:
        return json.dumps({"type": kind, "topic": "session", "session_id": self.session_id, "call_id": self.call_id,
                           "sender": sender, "ts": utc_now_iso(), "payload": payload, **extra})

    def audio_frame(self, clip: AgentClip, index: int) -> str:
        return self._audio_head + utc_now_iso() + '",' + clip.browser[index]

    async def stop_audio(self) -> None:
        await self.send(self.envelope("control", "System", None, action="audio_stop", reason="barge_in"))

    async def partial(self, text: str) -> None:
        await self.send(self.envelope("event", "User", {"event_type": "stt_partial",
                                                        "data": {"content": text, "is_final": False}}))

    async def final(self, text: str) -> None:
        await self.send(self.envelope("event", "User", {"type": "user", "status": "completed", "content": text}))

    async def assistant_text(self, text: str) -> None:
        await self.send(self.envelope("assistant_streaming", "Assistant", {"content": text}))


def typed_text(text: str) -> str | None:
    """The user's typed text; None for the stop message."""
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if isinstance(message, dict):
        if message.get("type") == "stop":
            return None
        for key in ("text", "content", "message"):
            if isinstance(message.get(key), str):
                return message[key]
    return text


async def browser_conversation(ws: WebSocket) -> None:
    """One browser voice session, until `{"type":"stop"}`, hang-up or an injected drop."""
    call_id = ws.query_params.get("call_id") or str(uuid.uuid4())
    session_id = ws.query_params.get("session_id")
    await ws.accept()
    sender = BrowserSender(ws)
    call = Call(ws.app.state.ctx, sender, ws.url.path)
    call.begin(call_id, session_id)
    try:
        while True:  # ends with the socket or the stop message
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is not None:
                if len(data) % 2:
                    call.malformed()  # PCM16 frames have an even number of bytes
                else:
                    await call.audio(data, len(data) // 2, SAMPLE_RATE)
                continue
            text = typed_text(message.get("text") or "")
            if text is None:
                await sender.close(1000)
                break
            await call.text_input(text)
    finally:
        await call.end()
