"""What a call yields: the measurements it streams (CallObserver), its turns and result, and whether the
caller would call it a failure (`call_failure`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from audio.fixtures import Clip
from voice.jitter import PlayoutStats


class CallObserver(Protocol):
    """Where a call's measurements go (Locust + the exact recorder in a run; a list in a test)."""

    def metric(self, group: str, name: str, ms: float, error: str | None = None) -> None: ...

    def value(self, name: str, value: float) -> None: ...

    def count(self, name: str, amount: int = 1) -> None: ...

    def error(self, kind: str, message: str) -> None: ...

    def lateness(self, ms: float) -> None: ...


# Turn outcomes
ANSWERED = "answered"
UNANSWERED = "unanswered"
CUT_BY_HANGUP = "cut_by_hangup"  # the planned hang-up (call_duration_s) came first: not a failure
ABANDONED = "abandoned"  # an injected abrupt disconnect cut it off: not a failure


@dataclass
class Turn:
    index: int
    clip: Clip
    speech_start_at: float  # scheduled (perf_counter s)
    speech_end_at: float
    barge_in: bool = False  # this utterance interrupts the previous reply
    awaiting_stop: bool = False  # barge-in sent, the interrupted reply not yet stopped
    old_audio_last_at: float | None = None
    first_audible_at: float | None = None
    last_agent_audio_at: float | None = None
    first_partial_at: float | None = None
    final_at: float | None = None
    stopped_at: float | None = None
    mark_seen: bool = False
    fault: str | None = None  # injected on purpose in this turn
    outcome: str | None = None  # ANSWERED, UNANSWERED, CUT_BY_HANGUP or ABANDONED once known
    assistant_text: str = ""
    transcript: str = ""  # the final transcript of this utterance, where the protocol shows it
    playout: PlayoutStats | None = None

    @property
    def voice_loop_ms(self) -> float | None:
        return None if self.first_audible_at is None else (self.first_audible_at - self.speech_end_at) * 1000.0


@dataclass
class CallResult:
    turns: list[Turn] = field(default_factory=list)
    answered_turns: int = 0
    cut_turns: int = 0  # cut short by the planned hang-up
    abandoned_turns: int = 0  # cut off by an injected abrupt disconnect
    frames_sent: int = 0
    dropped: bool = False  # the socket closed before we hung up
    failure: str | None = None
    faults: list[str] = field(default_factory=list)  # injected on purpose
    continue_from: int | None = None  # an injected disconnect or reconnect: the next turn, on a new call

    setup_failed: bool = False  # the call never got its media socket
    checks_failed: str | None = None  # the caller's own checks of the call (a consultation's keywords) failed: why

    @property
    def completed(self) -> bool:
        """What the caller experienced was a working call (see `call_failure`)."""
        return call_failure(self) is None

    def absorb(self, later: "CallResult") -> "CallResult":
        """Add the session that continued this call after a reconnect."""
        self.turns += later.turns
        self.answered_turns += later.answered_turns
        self.cut_turns += later.cut_turns
        self.abandoned_turns += later.abandoned_turns
        self.frames_sent += later.frames_sent
        self.dropped = self.dropped or later.dropped
        self.failure = self.failure or later.failure
        self.setup_failed = self.setup_failed or later.setup_failed
        self.faults += later.faults
        self.continue_from = later.continue_from
        return self


# Why a call failed, from the caller's side (counted as calls_failed_<kind>)
SETUP_FAILED = "setup"  # the call never got its media socket
DROPPED = "dropped"  # the socket closed or broke before the caller hung up
UNANSWERED_TURN = "unanswered"  # a turn got no audible answer within its timeout
NEVER_HEARD = "never_heard"  # the caller hung up as planned without having heard the agent once
CHECKS_FAILED = "checks"  # a consultation's own checks (expected keywords) failed
OTHER_FAILURE = "other"


@dataclass(frozen=True)
class CallFailure:
    kind: str
    reason: str


def call_failure(result: CallResult) -> CallFailure | None:
    """Why the caller would call this call a failure, or None: it was set up, its socket was not dropped,
    every turn was answered audibly within its timeout (turns cut by the planned hang-up or an injected
    disconnect excepted), and the caller heard the agent at least once."""
    if result.setup_failed:
        return CallFailure(SETUP_FAILED, result.failure or "call setup failed")
    if result.dropped:
        return CallFailure(DROPPED, result.failure or "the socket closed mid-call")
    if any(turn.outcome == UNANSWERED for turn in result.turns):
        return CallFailure(UNANSWERED_TURN, result.failure or "a turn got no audible answer")
    if result.failure is not None:
        return CallFailure(OTHER_FAILURE, result.failure)
    if undecided := [turn.index for turn in result.turns if turn.outcome is None]:
        return CallFailure(OTHER_FAILURE, f"turn {undecided[0]} ended neither answered nor hung up on")
    if result.checks_failed is not None:
        return CallFailure(CHECKS_FAILED, result.checks_failed)
    if result.answered_turns == 0:
        return CallFailure(NEVER_HEARD, f"hung up after {len(result.turns)} turn(s) without hearing the agent once")
    return None
