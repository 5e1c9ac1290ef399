"""Test-only voice agent that breaks the protocol on purpose: bad JSON, unknown kinds, binary frames
where text is expected, undecodable audio, then it drops the socket mid-turn."""

import asyncio
import base64
import uuid

from fastapi import FastAPI, WebSocket

app = FastAPI()
GARBAGE = ['{"kind": "AudioData", "audioData": {"data": "!!!not base64!!!"}}', "{not json", '{"kind": "Mystery"}', "[1, 2, 3]"]


@app.get("/api/v1/health")
async def health() -> dict:
    return {"status": "healthy"}


@app.post("/api/v1/calls/initiate")
async def initiate() -> dict:
    return {"call_id": str(uuid.uuid4()), "status": "initiating"}


@app.websocket("/api/v1/media/stream")
async def media(ws: WebSocket) -> None:
    await ws.accept()
    silence = base64.b64encode(b"\x00" * 1280).decode()
    await asyncio.sleep(0.5)  # the caller is speaking now, so agent audio gets decoded and checked
    for text in GARBAGE:
        await ws.send_text(text)
    await ws.send_bytes(b"\x01\x02binary where JSON text is expected")
    await ws.send_text('{"kind": "AudioData", "audioData": {"data": "%s"}}' % silence)
    await asyncio.sleep(1.0)
    await ws.close(code=1011)  # gone mid-turn, before any answer
