"""What every media protocol codec gives the voice user: pre-encoded outbound frames and parsed inbound events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

AUDIO = "audio"
STOP_AUDIO = "stop_audio"  # barge-in acknowledged: ACS StopAudio, Twilio clear, browser audio_stop
MARK = "mark"  # the agent's reply finished playing (Twilio mark)
TRANSCRIPT_PARTIAL = "transcript_partial"
TRANSCRIPT_FINAL = "transcript_final"
ASSISTANT_TEXT = "assistant_text"
OTHER = "other"


class ProtocolError(ValueError):
    """A frame from the server that does not follow the protocol (counted, never fatal)."""


@dataclass(slots=True)
class InboundEvent:
    kind: str
    data: str | bytes | None = None  # audio: base64 payload (decoded only when needed); text events: the text
    duration_ms: float = 0.0  # audio: how much audio the frame carries


def b64_size(data: str | bytes) -> int:
    """Decoded size of a base64 string, without decoding it (never negative: "=" alone is 0, not -1)."""
    size = len(data) * 3 // 4
    if data[-2:] in ("==", b"=="):
        size -= 2
    elif data[-1:] in ("=", b"="):
        size -= 1
    return max(size, 0)


class MediaCodec(Protocol):
    name: str
    sample_rate: int  # of the audio on the wire
    frame_ms: int
    binary_frames: bool  # outbound audio as binary WebSocket frames (browser) or text (JSON protocols)
    carries_transcripts: bool  # the agent sends partial/final transcripts of the caller (browser envelopes)
    wire_bytes_per_ms: int  # raw audio bytes per ms on the wire (before any base64): 32 for PCM16 16 kHz, 8 for mu-law
    sample_width: int  # raw audio bytes per sample on the wire
    stamp_ms: int  # audio timeline step per message index, for the frames' timestamps (frame_ms unless chunked)

    def opening_messages(self) -> list[bytes]: ...

    def closing_messages(self) -> list[bytes]: ...

    def encode_payloads(self, pcm16_16k: bytes) -> list[bytes]:
        """Per-frame base64 payloads of a 16 kHz PCM16 clip (done once per clip, then cached)."""
        ...

    def frame(self, payload: bytes, index: int) -> bytes:
        """The wire message for frame `index` carrying a pre-encoded payload."""
        ...

    def payload_audio(self, payload: bytes) -> bytes:
        """One of our own pre-encoded payloads -> the raw wire audio it carries."""
        ...

    def encode_chunk(self, audio: bytes) -> bytes:
        """Raw wire audio -> a payload for `frame` (done once per chunk, then cached)."""
        ...

    def dtmf(self, digit: str) -> bytes | None: ...

    def parse(self, message: bytes | str) -> InboundEvent: ...

    def decode_payload(self, payload: bytes) -> np.ndarray:
        """One of our own pre-encoded outbound payloads -> int16 samples."""
        ...

    def decode_audio(self, payload: str | bytes) -> np.ndarray:
        """Inbound audio payload -> int16 samples (for the audible-energy check)."""
        ...
