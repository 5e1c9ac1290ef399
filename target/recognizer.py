"""Stand-in speech recognition: the reference target cannot run real ASR, so it recognizes the fixture
utterances it hears by audio fingerprint and answers relevantly by keyword rules.

Fingerprints: every caller clip of the fixture manifest is cut and encoded exactly as the load
generator sends it (protocols/: ACS PCM16 16 kHz in 20 ms frames, browser PCM16 16 kHz in 1024 B
frames, Twilio mu-law 8 kHz in 20 ms frames, decoded back to PCM16 as the target decodes it), and a
short hash of each frame's samples maps to the clip's text. Frames that occur in more than one clip
(or carry digital silence) are left out, so a hit names exactly one utterance. A clip starts on a
frame boundary of its call, so any of its frames as received is in the table; the pipeline looks up
the first speech frames of a turn until one hits (`MAX_RECOGNIZE_FRAMES`). Audio that is not a
fixture (or not frame-aligned) is not recognized: the target keeps its generic transcript and its
default reply.

Replies: `reply_topic(text)` applies `TOPIC_RULES` in order (first phrase found wins, case-insensitive)
and names a topic; the agent reply clip with that `topic` in the manifest is the answer
(target.agent_audio.choose_reply), e.g. emergency words -> a reply mentioning "emergency services",
a refill -> a reply mentioning "pharmacy".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from protocols.acs import AcsCodec
from protocols.browser import BrowserCodec
from protocols.twilio import TwilioCodec
from audio.fixtures import load_clips

MAX_RECOGNIZE_FRAMES = 25  # speech frames of a turn tried before it counts as unknown audio

# (topic, phrases): the first rule with a phrase in the lower-cased transcript picks the reply topic.
TOPIC_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("emergency", ("chest pain", "can't breathe", "cannot breathe", "lips are blue", "throat is swelling",
                   "epi pen", "hurry", "inhaler", "ambulance", "unconscious")),
    ("crisis", ("hopeless", "panic", "alone tonight", "hurt myself", "crisis")),
    ("nurse", ("medication", "dizzy", "side effect", "stop taking")),
    ("injury", ("ankle", "swollen", "weight on it", "sprain", "injur")),
    ("pharmacy", ("refill", "pharmacy", "prescription")),
    ("results", ("results", "cholesterol")),
    ("checkup", ("checkup", "check up", "fast before")),
    ("appointment", ("appointment", "come in", "slot")),
)


def reply_topic(text: str | None) -> str | None:
    """The reply topic for what the caller said (recognized or typed); None: no rule matches."""
    if not text:
        return None
    lowered = text.lower().replace("\u2019", "'")
    for topic, phrases in TOPIC_RULES:
        if any(phrase in lowered for phrase in phrases):
            return topic
    return None


def fingerprint(samples: bytes | np.ndarray) -> bytes:
    """8-byte hash of one received frame's PCM16 samples (as bytes or an int16 array)."""
    data = samples.tobytes() if isinstance(samples, np.ndarray) else bytes(samples)
    return hashlib.blake2b(data, digest_size=8).digest()


def generator_codecs() -> list:
    """The load generator's caller-side codecs, one per wire encoding the target receives."""
    return [AcsCodec("recognizer"), BrowserCodec(), TwilioCodec("CArecognizer", "MZrecognizer")]


class Recognizer:
    """Frame fingerprint -> the text of the one fixture utterance containing that frame."""

    def __init__(self, table: dict[bytes, str]) -> None:
        self.table = table

    @classmethod
    def from_manifest(cls, manifest: str | Path) -> Recognizer:
        """Fingerprint every frame of every caller clip in every generator encoding (once, at startup)."""
        owners: dict[bytes, str | None] = {}
        for clip in load_clips(Path(manifest)):
            if clip.role != "caller" or clip.sample_rate != 16000:
                continue
            for codec in generator_codecs():
                for payload in codec.encode_payloads(clip.pcm):
                    samples = codec.decode_payload(payload)
                    if not samples.any():
                        continue  # digital silence is in every clip
                    key = fingerprint(samples)
                    owners[key] = clip.text if owners.get(key, clip.text) == clip.text else None
        return cls({key: text for key, text in owners.items() if text is not None})

    def recognize(self, samples: bytes | np.ndarray) -> str | None:
        """The text of the fixture utterance this received frame belongs to; None for unknown audio."""
        return self.table.get(fingerprint(samples))

    def __len__(self) -> int:
        return len(self.table)
