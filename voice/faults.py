"""Faults the caller injects on purpose (--fault-rate, the resilience test type).

Per turn, with probability `rate`, one fault chosen uniformly from FAULT_KINDS:

- skipped_chunks:    a run of about SKIPPED_RUN outbound audio messages mid-utterance is not sent (the schedule
                     goes on, so the agent hears a gap)
- malformed_frame:   one frame the protocol cannot parse is sent mid-utterance, then the call carries on
- abrupt_disconnect: the socket is closed mid-utterance without a goodbye; the caller calls again and carries
                     on with the remaining turns
- reconnect:         after the agent's reply, a clean hang-up and a new call for the remaining turns

Every injected fault is counted (`simulated_errors`, `simulated_<kind>`) and never as a failure of the system
under test; what the agent does next (answering or not) is measured as usual. Seeded, so runs repeat.
"""

from __future__ import annotations

import random

SKIPPED_CHUNKS = "skipped_chunks"
MALFORMED_FRAME = "malformed_frame"
ABRUPT_DISCONNECT = "abrupt_disconnect"
RECONNECT = "reconnect"
FAULT_KINDS = (SKIPPED_CHUNKS, MALFORMED_FRAME, ABRUPT_DISCONNECT, RECONNECT)
MID_UTTERANCE = (SKIPPED_CHUNKS, MALFORMED_FRAME, ABRUPT_DISCONNECT)
FAULT_SEED = 424242  # each user's injector gets FAULT_SEED + its number in the process
SKIPPED_RUN = 5

# What a protocol cannot parse: truncated JSON for the JSON protocols, an odd-length "PCM16" binary frame
# for the browser socket (whose text frames are typed user input, so text would be valid).
MALFORMED_TEXT = b'{"kind":"AudioData","audioData":{"data":"AAAA'
MALFORMED_BINARY = b"\x01\x02\x03"


class FaultInjector:
    """Decides, per turn, which fault (if any) to inject."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate:g}")
        self.rate = rate
        self.rng = rng

    def roll(self, can_reconnect: bool = True) -> str | None:
        """The fault for the next turn, or None. Without a following turn a reconnect has nothing to
        carry on with, so one of the other kinds is chosen instead."""
        if self.rate <= 0.0 or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(FAULT_KINDS if can_reconnect else MID_UTTERANCE)


def fault_rng(number: int) -> random.Random:
    """The seeded generator of a process's `number`-th caller."""
    return random.Random(FAULT_SEED + number)


def fault_window(messages: int, speech_first: int, speech_end: int, kind: str) -> tuple[int, int]:
    """(message index where the fault strikes, how many messages it skips) within an utterance of `messages`
    messages whose speech spans messages [speech_first, speech_end]: mid-speech, and skipping at most a
    third of the speech so the utterance stays one utterance."""
    last = max(0, messages - 1)
    first, end = min(speech_first, last), min(max(speech_end, speech_first), last)
    middle = (first + end) // 2
    if kind != SKIPPED_CHUNKS:
        return middle, 0
    run = max(1, min(SKIPPED_RUN, (end - first + 1) // 3))
    at = max(first, middle - run // 2)
    return at, min(run, messages - at)


def malformed_message(binary_frames: bool) -> bytes:
    """One frame the protocol cannot parse, for a codec sending binary or text frames."""
    return MALFORMED_BINARY if binary_frames else MALFORMED_TEXT
