"""ACS bidirectional media streaming socket (/api/v1/media/stream, /ws/call/stream).

Text frames of JSON, keys matched case-insensitively: AudioMetadata (optional), AudioData (base64
16 kHz PCM16, any length), DtmfData. The server answers with AudioData frames of agent_frame_ms and
`{"kind":"StopAudio",...}` on barge-in. Anything unusable is counted as malformed and ignored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.websockets import WebSocket

from target.agent_audio import AgentClip
from target.pipeline import Call, MediaSender, decode_base64_audio

STOP_AUDIO = json.dumps({"kind": "StopAudio", "audioData": None, "stopAudio": {}}, separators=(",", ":"))
SAMPLE_RATE = 16000


def ci_get(obj: dict[str, Any], key: str) -> Any:
    """obj[key] with the key matched case-insensitively (`key` given in lower case); None if absent."""
    value = obj.get(key)
    if value is not None:
        return value
    for name, value in obj.items():
        if name.lower() == key:
            return value
    return None


def kind_and_body(message: dict[str, Any]) -> tuple[str | None, Any]:
    """(lower-case kind, its body object) of an ACS message, e.g. ("audiodata", {"data": ...})."""
    kind = message.get("kind")
    if kind == "AudioData":  # fast path: the documented casing of the frame sent 50 times a second
        body = message.get("audioData")
        if body is not None:
            return "audiodata", body
    kind = ci_get(message, "kind")
    if not isinstance(kind, str):
        return None, None
    kind = kind.lower()
    return kind, ci_get(message, kind)


class AcsSender(MediaSender):
    protocol = "acs"

    def audio_frame(self, clip: AgentClip, index: int) -> str:
        return clip.acs[index]

    async def stop_audio(self) -> None:
        await self.send(STOP_AUDIO)


async def handle_text(call: Call, text: str) -> None:
    """Dispatch one ACS JSON frame."""
    try:
        message = json.loads(text)
    except ValueError:
        call.malformed()
        return
    kind, body = kind_and_body(message) if isinstance(message, dict) else (None, None)
    if kind == "audiodata":
        pcm = decode_base64_audio(ci_get(body, "data") if isinstance(body, dict) else None)
        if pcm is None:
            call.malformed()
            return
        if len(pcm) % 2:
            pcm = pcm[:-1]
        await call.audio(pcm, len(pcm) // 2, SAMPLE_RATE)
    elif kind == "audiometadata":
        return
    elif kind == "dtmfdata":
        digit = ci_get(body, "data") if isinstance(body, dict) else None
        if digit is None:
            call.malformed()
        else:
            call.dtmf(str(digit))
    else:
        call.malformed()


async def acs_media(ws: WebSocket) -> None:
    """One ACS media connection, until the caller hangs up (or an injected drop)."""
    query, headers = ws.query_params, ws.headers
    call_id = query.get("call_connection_id") or headers.get("x-ms-call-connection-id") or str(uuid.uuid4())
    session_id = query.get("session_id") or headers.get("x-session-id")
    await ws.accept()
    call = Call(ws.app.state.ctx, AcsSender(ws), ws.url.path)
    call.begin(call_id, session_id)
    try:
        while True:  # ends with the socket
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                call.malformed()
            else:
                await handle_text(call, text)
    finally:
        await call.end()
