"""Twilio Media Streams, caller side: JSON events, base64 G.711 mu-law at 8 kHz."""

from __future__ import annotations

import base64
import json

import numpy as np

from protocols.media import AUDIO, MARK, OTHER, STOP_AUDIO, InboundEvent, ProtocolError, b64_size
from audio.pcm import downsample_16k_to_8k, frame_bytes, mulaw_decode, mulaw_encode, split_frames


class TwilioCodec:
    """connected/start/media/stop events; 20 ms = 160 mu-law bytes per media frame."""

    name = "twilio"
    sample_rate = 8000
    frame_ms = 20
    binary_frames = False
    carries_transcripts = False  # the agent shows its transcripts of the caller on this socket
    wire_bytes_per_ms = 8
    sample_width = 1
    stamp_ms = 20

    def __init__(self, call_sid: str, stream_sid: str, custom_parameters: dict | None = None) -> None:
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.custom_parameters = custom_parameters or {}
        self._suffix = f'"}},"streamSid":"{stream_sid}"}}'.encode()

    def opening_messages(self) -> list[bytes]:
        start = {"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
                 "start": {"streamSid": self.stream_sid, "callSid": self.call_sid, "accountSid": "ACvoiceload",
                           "tracks": ["inbound"], "customParameters": self.custom_parameters,
                           "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return [json.dumps(connected).encode(), json.dumps(start).encode()]

    def closing_messages(self) -> list[bytes]:
        return [json.dumps({"event": "stop", "streamSid": self.stream_sid, "stop": {"callSid": self.call_sid}}).encode()]

    def encode_payloads(self, pcm16_16k: bytes) -> list[bytes]:
        # pad in PCM before encoding: a mu-law 0x00 pad byte is full-scale noise, not silence
        frames = split_frames(pcm16_16k, frame_bytes(16000, self.frame_ms))
        return [base64.b64encode(mulaw_encode(downsample_16k_to_8k(f))) for f in frames]

    def frame(self, payload: bytes, index: int) -> bytes:
        seq = str(index + 2).encode()
        return b"".join((b'{"event":"media","sequenceNumber":"', seq, b'","media":{"track":"inbound","chunk":"',
                         str(index + 1).encode(), b'","timestamp":"', str(index * self.stamp_ms).encode(),
                         b'","payload":"', payload, self._suffix))

    def payload_audio(self, payload: bytes) -> bytes:
        return base64.b64decode(payload)

    def encode_chunk(self, audio: bytes) -> bytes:
        return base64.b64encode(audio)

    def dtmf(self, digit: str) -> bytes:
        return json.dumps({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}).encode()

    def parse(self, message: bytes | str) -> InboundEvent:
        if isinstance(message, bytes) and message.startswith(b'{"event":"media"') and message.endswith(b'"}}'):
            # The common agent audio frame ({..."media":{"payload":"<b64>"}}), read without a JSON parse.
            start = message.find(b'"payload":"')
            data = message[start + 11:-3] if start > 0 else b'"'
            if b'"' not in data and b"\\" not in data:  # an escaped payload ("\/") takes the JSON parse
                return InboundEvent(AUDIO, data, b64_size(data) / 8.0)
        try:
            obj = json.loads(message)
        except (ValueError, TypeError, RecursionError):  # RecursionError: nested too deep ("[[[[...")
            raise ProtocolError("invalid JSON") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise ProtocolError("frame has no event")
        event = obj["event"]
        if event == "media":
            media = obj.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                raise ProtocolError("media without payload")
            return InboundEvent(AUDIO, payload, b64_size(payload) / 8.0)
        if event == "clear":
            return InboundEvent(STOP_AUDIO)
        if event == "mark":
            return InboundEvent(MARK)
        return InboundEvent(OTHER, event)

    def decode_payload(self, payload: bytes) -> np.ndarray:
        """One of our own pre-encoded outbound payloads -> samples."""
        return self.decode_audio(payload)

    def decode_audio(self, payload: str | bytes) -> np.ndarray:
        try:
            return mulaw_decode(base64.b64decode(payload))
        except ValueError:
            raise ProtocolError("bad base64 audio") from None
