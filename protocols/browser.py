"""The browser conversation socket, caller side: binary PCM16 16 kHz frames out, JSON envelopes in."""

from __future__ import annotations

import base64
import json

import numpy as np

from protocols.media import ASSISTANT_TEXT, AUDIO, OTHER, STOP_AUDIO, TRANSCRIPT_FINAL, TRANSCRIPT_PARTIAL, InboundEvent, ProtocolError, b64_size
from audio.pcm import split_frames

BROWSER_FRAME_BYTES = 1024  # what the web front end sends: 512 samples = 32 ms at 16 kHz


class BrowserCodec:
    """Outbound frames are raw PCM (sent as binary WebSocket frames); inbound envelopes carry
    partial/final transcripts, streamed assistant text, audio_data and control/audio_stop."""

    name = "browser"
    sample_rate = 16000
    frame_ms = 32
    binary_frames = True
    carries_transcripts = True  # the agent shows its transcripts of the caller on this socket
    wire_bytes_per_ms = 32
    sample_width = 2
    stamp_ms = 32

    def opening_messages(self) -> list[bytes]:
        return []

    def closing_messages(self) -> list[bytes]:
        return [b'{"type":"stop"}']

    def encode_payloads(self, pcm16_16k: bytes) -> list[bytes]:
        return split_frames(pcm16_16k, BROWSER_FRAME_BYTES)

    def frame(self, payload: bytes, index: int) -> bytes:
        return payload

    def payload_audio(self, payload: bytes) -> bytes:
        return payload

    def encode_chunk(self, audio: bytes) -> bytes:
        return audio

    def dtmf(self, digit: str) -> bytes | None:
        return None  # a browser has no keypad tones

    def decode_payload(self, payload: bytes) -> np.ndarray:
        if len(payload) % 2:
            raise ProtocolError("odd-length PCM16 audio")
        return np.frombuffer(payload, dtype="<i2")

    def parse(self, message: bytes | str) -> InboundEvent:
        try:
            obj = json.loads(message)
        except (ValueError, TypeError, RecursionError):  # RecursionError: nested too deep ("[[[[...")
            raise ProtocolError("invalid JSON envelope") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise ProtocolError("envelope has no type")
        kind = obj["type"]
        payload = obj.get("payload") if isinstance(obj.get("payload"), dict) else {}
        if kind == "audio_data":
            data = obj.get("data", payload.get("data"))
            if not isinstance(data, str):
                raise ProtocolError("audio_data without data")
            rate = obj.get("sample_rate", 16000)
            if not isinstance(rate, (int, float)) or not 1 <= rate <= 1_000_000:  # tiny, huge, inf, NaN: the default
                rate = 16000
            return InboundEvent(AUDIO, data, b64_size(data) / (2.0 * rate / 1000.0))
        if kind == "control" and obj.get("action") == "audio_stop":
            return InboundEvent(STOP_AUDIO)
        if kind == "assistant_streaming":
            return InboundEvent(ASSISTANT_TEXT, str(payload.get("content", "")))
        if kind == "event":
            if payload.get("event_type") == "stt_partial":
                data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
                return InboundEvent(TRANSCRIPT_FINAL if data.get("is_final") else TRANSCRIPT_PARTIAL, str(data.get("content", "")))
            if payload.get("type") == "user" and payload.get("status") == "completed":
                return InboundEvent(TRANSCRIPT_FINAL, str(payload.get("content", "")))
        return InboundEvent(OTHER, kind)

    def decode_audio(self, payload: str | bytes) -> np.ndarray:
        try:
            return np.frombuffer(base64.b64decode(payload), dtype="<i2")
        except ValueError:
            raise ProtocolError("bad base64 or odd-length PCM16 audio") from None
