"""How a call's caller audio is cut into messages: the codec's real-time frames, or fixed-size chunks
sent at a fixed interval (--chunk-bytes / --chunk-interval-ms), which may run faster or slower than real time.

Either way message n is due at t0 + n * step_ms, every payload is encoded once per process and cached,
and the speech anchors of a turn follow the messages actually sent: speech starts when the message
holding the clip's first speech byte is due, and ends when the message holding the clip's speech end
(the first byte after the speech) is due. With the codec's own frames this is exactly its frame grid.
"""

from __future__ import annotations

from typing import Callable

from audio.pcm import DEFAULT_SPEECH_RMS
from audio.fixtures import Clip, encoded_payloads, silence_payload, wire_speech_bounds

_CHUNKS: dict[tuple[str, str, int], list[bytes]] = {}


def align_chunk_bytes(chunk_bytes: int, sample_width: int) -> int:
    """Whole samples only (an odd PCM16 chunk is a malformed frame): round down, at least one sample."""
    return max(sample_width, chunk_bytes - chunk_bytes % sample_width)


def resolve_chunking(chunk_bytes: int, interval_ms: float, wire_bytes_per_ms: int, sample_width: int) -> tuple[int, float]:
    """(bytes, ms) per message from the options; a 0 one is filled in at real time from the other.
    (0, 0) when both are 0: the codec's own framing."""
    if chunk_bytes <= 0 and interval_ms <= 0:
        return 0, 0.0
    if chunk_bytes <= 0:
        chunk_bytes = round(interval_ms * wire_bytes_per_ms)
    chunk_bytes = align_chunk_bytes(chunk_bytes, sample_width)
    if interval_ms <= 0:
        interval_ms = chunk_bytes / wire_bytes_per_ms
    return chunk_bytes, float(interval_ms)


def chunk_span(first_byte: int, end_byte: int, chunk_bytes: int) -> tuple[int, int]:
    """Indices of the chunks holding a clip's first speech byte and its speech end (the first byte after it)."""
    return first_byte // chunk_bytes, end_byte // chunk_bytes


def real_time_ratio(audio_ms: float, stream_ms: float) -> float | None:
    """Audio duration sent / wall time it took: 1.0 is real time, above 1 faster. None without a stream."""
    return None if stream_ms <= 0 else audio_ms / stream_ms


def split_chunks(audio: bytes, chunk_bytes: int, pad: bytes) -> list[bytes]:
    """Cut raw wire audio into chunks of `chunk_bytes`, padding the last one with the silence pattern `pad`."""
    chunks = [audio[i:i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
    if chunks and len(chunks[-1]) < chunk_bytes:
        missing = chunk_bytes - len(chunks[-1])
        chunks[-1] += (pad * (missing // len(pad) + 1))[:missing]
    return chunks


class AudioStream:
    """One call's outbound audio: `step_ms` between messages, `message_bytes` of wire audio in each."""

    def __init__(self, codec, chunk_bytes: int = 0, interval_ms: float = 0.0) -> None:
        self.codec = codec
        self.chunk_bytes, interval_ms = resolve_chunking(chunk_bytes, interval_ms, codec.wire_bytes_per_ms,
                                                         codec.sample_width)
        self.chunked = self.chunk_bytes > 0
        self.step_ms: float = interval_ms if self.chunked else codec.frame_ms
        self.message_bytes: int = self.chunk_bytes if self.chunked else codec.frame_ms * codec.wire_bytes_per_ms
        self.message_ms: float = self.message_bytes / codec.wire_bytes_per_ms  # audio carried by one message
        if self.chunked:
            self._silence_audio = codec.payload_audio(silence_payload(codec))
            codec.stamp_ms = max(1, round(self.step_ms))  # the frames' timestamps follow the messages
            self.silence = self._chunks("__silence__", lambda: self._silence_audio)[0]
        else:
            self.silence = silence_payload(codec)

    def clip_payloads(self, clip: Clip) -> list[bytes]:
        """The clip's messages, pre-encoded once per process."""
        if not self.chunked:
            return encoded_payloads(self.codec, clip)
        return self._chunks(clip.id, lambda: b"".join(map(self.codec.payload_audio, encoded_payloads(self.codec, clip))))

    def speech_messages(self, clip: Clip, threshold: float = DEFAULT_SPEECH_RMS) -> tuple[int, int]:
        """(message holding the first speech byte, message holding the speech end) of the clip."""
        start_ms, end_ms = wire_speech_bounds(self.codec, clip, threshold)
        if not self.chunked:
            return start_ms // self.codec.frame_ms, end_ms // self.codec.frame_ms
        per_ms = self.codec.wire_bytes_per_ms
        return chunk_span(start_ms * per_ms, end_ms * per_ms, self.chunk_bytes)

    def _chunks(self, name: str, audio: Callable[[], bytes]) -> list[bytes]:
        """Cached chunk payloads of `name` (a clip id), built from its raw wire audio on first use."""
        key = (self.codec.name, name, self.chunk_bytes)
        chunks = _CHUNKS.get(key)
        if chunks is None:
            raw = split_chunks(audio(), self.chunk_bytes, self._silence_audio)
            chunks = _CHUNKS[key] = [self.codec.encode_chunk(c) for c in raw]
        return chunks
