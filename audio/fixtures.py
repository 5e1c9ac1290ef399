"""Real-speech audio fixtures (scenarios/audio/manifest.json) and their per-protocol encodings, cached."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from audio.pcm import DEFAULT_SPEECH_RMS, frame_bytes, pcm16_rms, read_wav

AUDIO_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "audio"


@dataclass(frozen=True)
class Clip:
    """One recorded utterance; speech start/end are on the manifest's 20 ms grid."""

    id: str
    role: str
    text: str
    sample_rate: int
    duration_ms: int
    speech_start_ms: int
    speech_end_ms: int
    pcm: bytes = field(repr=False)


@lru_cache(maxsize=4)
def load_clips(manifest_path: Path = AUDIO_DIR / "manifest.json") -> tuple[Clip, ...]:
    manifest = json.loads(manifest_path.read_text())
    clips = []
    for entry in manifest["clips"]:
        pcm, rate = read_wav(manifest_path.parent / entry["file"])
        clips.append(Clip(entry["id"], entry["role"], entry["text"], rate, entry["duration_ms"],
                          entry["speech_start_ms"], entry["speech_end_ms"], pcm))
    return tuple(clips)


def caller_clips() -> list[Clip]:
    return [c for c in load_clips() if c.role == "caller"]


def clip_by_id(clip_id: str) -> Clip:
    for clip in load_clips():
        if clip.id == clip_id:
            return clip
    raise KeyError(f"no audio clip {clip_id!r} in {AUDIO_DIR / 'manifest.json'}")


_PAYLOADS: dict[tuple[str, str], list[bytes]] = {}


def encoded_payloads(codec, clip: Clip) -> list[bytes]:
    """The clip cut into the codec's frames and base64-encoded, once per process."""
    key = (codec.name, clip.id)
    if key not in _PAYLOADS:
        _PAYLOADS[key] = codec.encode_payloads(clip.pcm)
    return _PAYLOADS[key]


_BOUNDS: dict[tuple[str, str], tuple[int, int]] = {}


def wire_speech_bounds(codec, clip: Clip, threshold: float = DEFAULT_SPEECH_RMS) -> tuple[int, int]:
    """(start, end) ms of speech as the codec's frames carry it. Telephony encoding changes what an
    energy VAD hears (8 kHz mu-law loses the sibilants' energy), so the schedule is anchored to the
    audio actually sent, not to the 16 kHz original."""
    key = (codec.name, clip.id)
    if key not in _BOUNDS:
        loud = [i for i, p in enumerate(encoded_payloads(codec, clip)) if pcm16_rms(codec.decode_payload(p)) >= threshold]
        _BOUNDS[key] = (loud[0] * codec.frame_ms, (loud[-1] + 1) * codec.frame_ms) if loud else (0, 0)
    return _BOUNDS[key]


def silence_payload(codec) -> bytes:
    """One frame of digital silence in the codec's encoding, once per process."""
    key = (codec.name, "__silence__")
    if key not in _PAYLOADS:
        _PAYLOADS[key] = codec.encode_payloads(b"\x00" * frame_bytes(16000, codec.frame_ms))
    return _PAYLOADS[key][0]
