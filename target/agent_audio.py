"""Agent reply clips, loaded once and pre-encoded per protocol so a send is just a cached string.

Per frame (agent_frame_ms of audio):
- acs:     the full JSON text frame (16 kHz PCM16, base64)
- twilio:  the tail after the per-call streamSid: `<b64 mu-law 8 kHz>"}}`
- browser: the tail after the per-call envelope head: `"data":"<b64>","sample_rate":16000,"frame_index":n,"is_final":b}`

Which clip answers a turn (`choose_reply`): the clip whose manifest `topic` the caller's words call for
(target.recognizer.reply_topic), else round-robin by turn number over the clips without a topic.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from audio.pcm import downsample_16k_to_8k, frame_bytes, mulaw_encode, read_wav, split_frames

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AgentClip:
    """One agent reply: its text, speech onset and pre-encoded frames for each protocol."""

    id: str
    text: str
    words: tuple[str, ...]
    speech_start_ms: int
    duration_ms: int
    acs: tuple[str, ...]
    twilio: tuple[str, ...]
    browser: tuple[str, ...]
    topic: str | None = None  # what it answers (target.recognizer.TOPIC_RULES); None: a default reply

    @property
    def n_frames(self) -> int:
        return len(self.acs)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_clip(clip_id: str, text: str, speech_start_ms: int, pcm16k: bytes, frame_ms: int,
                topic: str | None = None) -> AgentClip:
    """Cut 16 kHz PCM16 into frame_ms frames and build every protocol's frame text once."""
    size = frame_bytes(SAMPLE_RATE, frame_ms)
    padded = pcm16k + b"\x00" * (-len(pcm16k) % size)  # pad with PCM silence before mu-law (0x00 is loud in mu-law)
    pcm_frames = split_frames(padded, size)
    mulaw_frames = split_frames(mulaw_encode(downsample_16k_to_8k(padded)), frame_bytes(8000, frame_ms, 1))
    last = len(pcm_frames) - 1
    acs = tuple(
        json.dumps({"kind": "AudioData", "audioData": {"data": _b64(f), "timestamp": None,
                                                       "participantRawID": None, "silent": False}},
                   separators=(",", ":"))
        for f in pcm_frames
    )
    twilio = tuple(_b64(f) + '"}}' for f in mulaw_frames)
    browser = tuple(
        f'"data":"{_b64(f)}","sample_rate":{SAMPLE_RATE},"frame_index":{i},"is_final":{"true" if i == last else "false"}}}'
        for i, f in enumerate(pcm_frames)
    )
    return AgentClip(clip_id, text, tuple(text.split()), speech_start_ms, len(pcm16k) * 1000 // (2 * SAMPLE_RATE),
                     acs, twilio, browser, topic)


def load_agent_clips(manifest_path: str | Path, frame_ms: int) -> list[AgentClip]:
    """All `role == "agent"` clips of the fixture manifest, in manifest order (the round-robin order)."""
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    clips = []
    for entry in manifest["clips"]:
        if entry.get("role") != "agent":
            continue
        pcm, rate = read_wav(manifest_path.parent / entry["file"])
        if rate != SAMPLE_RATE:
            raise ValueError(f"{entry['file']}: agent clips must be {SAMPLE_RATE} Hz, got {rate}")
        clips.append(encode_clip(entry["id"], entry["text"], int(entry.get("speech_start_ms", 0)), pcm, frame_ms,
                                 entry.get("topic")))
    if not clips:
        raise ValueError(f"{manifest_path}: no agent clips (role == 'agent')")
    return clips


def choose_reply(clips: list[AgentClip], turn: int, topic: str | None) -> AgentClip:
    """The reply for `topic` when a clip has it; otherwise round-robin by turn (from 1) over the default
    clips (those without a topic; all clips if every one has a topic)."""
    if topic is not None:
        for clip in clips:
            if clip.topic == topic:
                return clip
    defaults = [clip for clip in clips if clip.topic is None] or clips
    return defaults[(turn - 1) % len(defaults)]
