"""Pure audio helpers: PCM16 energy, G.711 mu-law, resampling and WAV loading.

Everything here works on raw little-endian PCM16 mono bytes or numpy int16 arrays
and has no I/O except `read_wav`. Shared by the load generator and the reference target.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

# RMS (int16 scale) at or above which a frame counts as speech / audible. About -36 dBFS:
# espeak-ng speech sits in the thousands, digital silence at 0, line noise well under 100.
DEFAULT_SPEECH_RMS = 500.0

_MULAW_BIAS = 0x84


def pcm16_rms(pcm: bytes | np.ndarray) -> float:
    """Root-mean-square level of PCM16 samples (0.0 for an empty frame)."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
    if samples.size == 0:
        return 0.0
    as_float = samples.astype(np.float64)
    return float(math.sqrt(float(np.dot(as_float, as_float)) / samples.size))


def _build_mulaw_decode_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.int16)
    for byte in range(256):
        inverted = ~byte & 0xFF
        sign = inverted & 0x80
        exponent = (inverted >> 4) & 0x07
        mantissa = inverted & 0x0F
        magnitude = ((mantissa << 3) + _MULAW_BIAS) << exponent
        value = magnitude - _MULAW_BIAS
        table[byte] = -value if sign else value
    return table


def _build_mulaw_encode_table() -> np.ndarray:
    """Encoded byte for every int16 value (index = sample + 32768), as the ITU G.711 reference does it."""
    value = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), 8159) + (_MULAW_BIAS >> 2)
    segment = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), value)
    encoded = np.where(segment >= 8, 0x7F, (segment << 4) | ((value >> (segment + 1)) & 0x0F))
    return ((encoded ^ mask) & 0xFF).astype(np.uint8)


MULAW_DECODE_TABLE = _build_mulaw_decode_table()
MULAW_ENCODE_TABLE = _build_mulaw_encode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> int16 samples."""
    return MULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: bytes | np.ndarray) -> bytes:
    """int16 samples (array or PCM16 bytes) -> G.711 mu-law bytes."""
    pcm = np.frombuffer(samples, dtype="<i2") if isinstance(samples, (bytes, bytearray)) else samples
    return MULAW_ENCODE_TABLE[pcm.astype(np.int32) + 32768].tobytes()


def downsample_16k_to_8k(pcm: bytes) -> bytes:
    """Halve the sample rate of PCM16 by averaging sample pairs (a crude low-pass, fine for telephony)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    if samples.size % 2:
        samples = np.append(samples, 0)
    return ((samples[0::2] + samples[1::2]) // 2).astype("<i2").tobytes()


def upsample_8k_to_16k(samples: np.ndarray) -> np.ndarray:
    """Double the sample rate of int16 samples by repeating each one."""
    return np.repeat(samples, 2)


def frame_bytes(sample_rate: int, frame_ms: int, bytes_per_sample: int = 2) -> int:
    """Size in bytes of one mono frame of `frame_ms` at `sample_rate`."""
    return sample_rate * frame_ms // 1000 * bytes_per_sample


def split_frames(data: bytes, size: int) -> list[bytes]:
    """Cut `data` into frames of `size` bytes, zero-padding the last one."""
    frames = [data[i : i + size] for i in range(0, len(data), size)]
    if frames and len(frames[-1]) < size:
        frames[-1] = frames[-1] + b"\x00" * (size - len(frames[-1]))
    return frames


def speech_bounds_ms(pcm: bytes, sample_rate: int, frame_ms: int = 20, threshold: float = DEFAULT_SPEECH_RMS) -> tuple[int, int]:
    """(start, end) in ms of speech on the `frame_ms` grid: start of the first frame at or above
    `threshold`, end of the last one. (0, 0) when nothing is audible."""
    size = frame_bytes(sample_rate, frame_ms)
    loud = [i for i, frame in enumerate(split_frames(pcm, size)) if pcm16_rms(frame) >= threshold]
    if not loud:
        return (0, 0)
    return (loud[0] * frame_ms, (loud[-1] + 1) * frame_ms)


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Read a mono PCM16 WAV file -> (pcm bytes, sample rate). Raises ValueError on other formats."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM, got {wav.getnchannels()} ch, {8 * wav.getsampwidth()} bit")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def write_wav(path: str | Path, pcm: bytes, sample_rate: int) -> None:
    """Write mono PCM16 bytes as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
