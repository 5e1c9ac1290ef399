"""Azure Communication Services bidirectional media streaming, caller side (JSON text frames, PCM16)."""

from __future__ import annotations

import base64
import json
import time

import numpy as np

from protocols.media import AUDIO, OTHER, STOP_AUDIO, InboundEvent, ProtocolError, b64_size
from audio.pcm import frame_bytes, split_frames

_AUDIO_PREFIX = b'{"kind":"AudioData","audioData":{"data":"'
_AUDIO_SUFFIX_START = b'","'


class AcsCodec:
    """ACS JSON frames: AudioMetadata, AudioData (base64 PCM16 16 kHz, 20 ms = 640 B), DtmfData."""

    name = "acs"
    sample_rate = 16000
    frame_ms = 20
    binary_frames = False
    carries_transcripts = False  # the agent shows its transcripts of the caller on this socket
    wire_bytes_per_ms = 32
    sample_width = 2
    stamp_ms = 20

    def __init__(self, call_id: str, participant: str = "8:acs:voiceload-caller") -> None:
        self.call_id = call_id
        self._start_ms = int(time.time() * 1000)
        self._second = -1
        self._second_text = b""
        self._prefix = b'{"kind":"AudioData","audioData":{"timestamp":"'
        self._middle = f'","participantRawID":"{participant}","data":"'.encode()
        self._suffix = b'","silent":false}}'

    def opening_messages(self) -> list[bytes]:
        meta = {"kind": "AudioMetadata", "audioMetadata": {"subscriptionId": self.call_id, "encoding": "PCM",
                "sampleRate": self.sample_rate, "channels": 1, "length": frame_bytes(self.sample_rate, self.frame_ms)}}
        return [json.dumps(meta).encode()]

    def closing_messages(self) -> list[bytes]:
        return []

    def encode_payloads(self, pcm16_16k: bytes) -> list[bytes]:
        return [base64.b64encode(f) for f in split_frames(pcm16_16k, frame_bytes(self.sample_rate, self.frame_ms))]

    def frame(self, payload: bytes, index: int) -> bytes:
        stamp_ms = self._start_ms + index * self.stamp_ms  # the frame's place on the audio timeline
        second, millis = divmod(stamp_ms, 1000)
        if second != self._second:  # format the date once a second, not once a frame
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"".join((self._prefix, self._second_text, b".%03dZ" % millis, self._middle, payload, self._suffix))

    def payload_audio(self, payload: bytes) -> bytes:
        return base64.b64decode(payload)

    def encode_chunk(self, audio: bytes) -> bytes:
        return base64.b64encode(audio)

    def dtmf(self, digit: str) -> bytes:
        return json.dumps({"kind": "DtmfData", "dtmfData": {"data": digit}}).encode()

    def parse(self, message: bytes | str) -> InboundEvent:
        if not isinstance(message, (str, bytes, bytearray)):
            raise ProtocolError("unexpected frame type")
        if isinstance(message, bytes) and message.startswith(_AUDIO_PREFIX):
            # The common agent audio frame, read without a JSON parse (base64 holds no quotes or escapes).
            # An escaped payload ("\/" from some JSON encoders) takes the JSON parse, which unescapes it.
            end = message.find(b'"', len(_AUDIO_PREFIX))
            data = message[len(_AUDIO_PREFIX):end]
            if end > 0 and message.startswith(_AUDIO_SUFFIX_START, end) and b"\\" not in data:
                return InboundEvent(AUDIO, data, b64_size(data) / 32.0)
        try:
            obj = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: nested too deep ("[[[[...")
            raise ProtocolError("invalid JSON") from None
        if not isinstance(obj, dict):
            raise ProtocolError("JSON frame is not an object")
        kind = _get(obj, "kind")
        if not isinstance(kind, str):
            raise ProtocolError("frame has no kind")
        kind = kind.lower()
        if kind == "audiodata":
            audio = _get(obj, "audioData")
            data = _get(audio, "data") if isinstance(audio, dict) else None
            if not isinstance(data, str):
                raise ProtocolError("AudioData without data")
            return InboundEvent(AUDIO, data, b64_size(data) / 32.0)
        if kind == "stopaudio":
            return InboundEvent(STOP_AUDIO)
        return InboundEvent(OTHER, kind)

    def decode_payload(self, payload: bytes) -> np.ndarray:
        """One of our own pre-encoded outbound payloads -> samples."""
        return self.decode_audio(payload)

    def decode_audio(self, payload: str | bytes) -> np.ndarray:
        try:
            return np.frombuffer(base64.b64decode(payload), dtype="<i2")
        except ValueError:
            raise ProtocolError("bad base64 or odd-length PCM16 audio") from None


def _get(obj: dict, key: str):
    """Case-insensitive key lookup: implementations differ ("audioData", "AudioData", "Kind")."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for name, value in obj.items():
        if name.lower() == lowered:
            return value
    return None
