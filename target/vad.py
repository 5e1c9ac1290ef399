"""Energy VAD: per received frame, speech iff RMS >= threshold; end of turn after enough trailing silence.

The state machines here are pure (no clock, no I/O): the pipeline feeds them a speech flag and the
frame's duration and acts on what they return.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from audio.pcm import pcm16_rms


def is_speech(samples: bytes | np.ndarray, threshold: float) -> bool:
    """True when the frame's PCM16 RMS is at or above `threshold`."""
    return pcm16_rms(samples) >= threshold


class VadEvent(Enum):
    SPEECH_START = "speech_start"
    END_OF_TURN = "end_of_turn"


class Endpointer:
    """Speech start / end of turn from per-frame speech flags.

    Idle: the first speech frame starts speech. In speech: silent frames add their duration to an
    accumulator, any speech frame resets it, and the turn ends on the frame that brings it to
    `eot_silence_ms` or more.
    """

    def __init__(self, eot_silence_ms: float) -> None:
        self.eot_silence_ms = eot_silence_ms
        self.in_speech = False
        self.silence_ms = 0.0

    def feed(self, speech: bool, duration_ms: float) -> VadEvent | None:
        if not self.in_speech:
            if speech:
                self.in_speech, self.silence_ms = True, 0.0
                return VadEvent.SPEECH_START
            return None
        if speech:
            self.silence_ms = 0.0
            return None
        self.silence_ms += duration_ms
        if self.silence_ms >= self.eot_silence_ms:
            self.reset()
            return VadEvent.END_OF_TURN
        return None

    def start(self) -> None:
        """Enter speech from outside (a barge-in hands its speech over as the next turn)."""
        self.in_speech, self.silence_ms = True, 0.0

    def reset(self) -> None:
        self.in_speech, self.silence_ms = False, 0.0


class SpeechRun:
    """Consecutive speech while the agent talks: fires once the run reaches `min_ms` (barge-in)."""

    def __init__(self, min_ms: float) -> None:
        self.min_ms = min_ms
        self.run_ms = 0.0
        self.started_at: float | None = None  # clock value of the run's first speech frame

    def feed(self, speech: bool, duration_ms: float, now: float) -> bool:
        """True when this frame makes the run of consecutive speech reach `min_ms`."""
        if not speech:
            self.reset()
            return False
        if self.started_at is None:
            self.started_at = now
        self.run_ms += duration_ms
        return self.run_ms >= self.min_ms

    def reset(self) -> None:
        self.run_ms, self.started_at = 0.0, None
