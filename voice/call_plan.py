"""What the caller is to do in a call: its utterances (TurnScript) and how it behaves (CallPlan)."""

from __future__ import annotations

from dataclasses import dataclass

from audio.fixtures import Clip
from audio.pcm import DEFAULT_SPEECH_RMS
from voice.faults import FaultInjector


@dataclass
class TurnScript:
    """One caller utterance. `barge_in_after_ms`: start it that long after the agent's previous reply
    became audible, interrupting it. `dtmf`: a keypad digit to send after the agent answers.
    `think_time_ms`: silence before it (after the previous reply; on the first turn, after connecting);
    None: the plan's think_time_ms between turns, nothing before the first."""

    clip: Clip
    barge_in_after_ms: float | None = None
    dtmf: str | None = None
    think_time_ms: int | None = None


@dataclass
class CallPlan:
    """How the caller behaves: what it says, how long it waits, how it decides the agent is done."""

    turns: list[TurnScript]
    turn_timeout_s: float = 8.0  # from the scheduled end of speech to the first audible reply
    reply_gap_s: float = 0.6  # no agent audio for this long after it started = the reply is over
    think_time_ms: int = 300  # silence between the end of a reply and the next utterance
    ping_interval_s: float = 1.0
    pong_timeout_s: float = 5.0
    audible_rms: float = DEFAULT_SPEECH_RMS
    max_call_s: float = 300.0
    max_reply_s: float = 60.0  # a reply still going this long after it became audible is talked over
    call_duration_s: float = 0.0  # > 0: cycle the turns until this long after the socket opened, then hang up
    chunk_bytes: int = 0  # > 0 or chunk_interval_ms > 0: fixed chunks instead of the codec's frames
    chunk_interval_ms: float = 0.0
    faults: FaultInjector | None = None  # faults injected on purpose, per turn
