"""Per-call, per-turn truth records: what the server did and when, served at the metrics endpoints.

All `*_ms` timestamps are ms since the media socket was accepted (server perf_counter); durations are
`llm_queue_ms` and `eot_to_first_audio_ms`. Memory is bounded: the oldest calls are forgotten first.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

MAX_CALLS = 10_000
MAX_TURNS = 100  # per call: the most recent turns are kept


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a Z suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(slots=True)
class TurnTruth:
    """One caller turn and the agent's reply to it."""

    turn: int
    speech_start_ms: float | None = None
    eot_detected_ms: float | None = None
    stt_final_ms: float | None = None
    llm_queue_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_byte_ms: float | None = None
    first_audio_sent_ms: float | None = None
    last_audio_sent_ms: float | None = None
    barge_in_ms: float | None = None
    first_partial_ms: float | None = None
    cancelled: bool = False
    modelled: dict[str, float] = field(default_factory=dict)
    agent_clip: str | None = None
    agent_speech_start_ms: int | None = None
    input: str = "speech"  # "speech" or "text" (browser typed input)
    transcript: str = ""

    @property
    def eot_to_first_audio_ms(self) -> float | None:
        if self.first_audio_sent_ms is None or self.eot_detected_ms is None:
            return None
        return self.first_audio_sent_ms - self.eot_detected_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "input": self.input,
            "speech_start_ms": _r(self.speech_start_ms),
            "eot_detected_ms": _r(self.eot_detected_ms),
            "stt_final_ms": _r(self.stt_final_ms),
            "llm_queue_ms": _r(self.llm_queue_ms),
            "llm_first_token_ms": _r(self.llm_first_token_ms),
            "tts_first_byte_ms": _r(self.tts_first_byte_ms),
            "first_audio_sent_ms": _r(self.first_audio_sent_ms),
            "last_audio_sent_ms": _r(self.last_audio_sent_ms),
            "barge_in_ms": _r(self.barge_in_ms),
            "first_partial_ms": _r(self.first_partial_ms),
            "cancelled": self.cancelled,
            "eot_to_first_audio_ms": _r(self.eot_to_first_audio_ms),
            "modelled": {k: round(v, 3) for k, v in self.modelled.items()},
            "agent_clip": self.agent_clip,
            "agent_speech_start_ms": self.agent_speech_start_ms,
            "transcript": self.transcript,
        }


@dataclass
class CallTruth:
    """Everything recorded about one call."""

    call_id: str
    session_id: str
    protocol: str | None = None
    path: str | None = None
    status: str = "registered"
    created_at: str = field(default_factory=utc_now_iso)
    target_number: str | None = None
    media_connected: bool = False
    last_callback: str | None = None
    malformed_frames: int = 0
    dtmf: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    turns: list[TurnTruth] = field(default_factory=list)
    turn_count: int = 0

    def add_turn(self, **attrs: Any) -> TurnTruth:
        """Append the next turn (numbered from 1); only the last MAX_TURNS are kept."""
        self.turn_count += 1
        turn = TurnTruth(turn=self.turn_count, **attrs)
        self.turns.append(turn)
        del self.turns[:-MAX_TURNS]
        return turn

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "session_id": self.session_id,
            "protocol": self.protocol,
            "path": self.path,
            "status": self.status,
            "created_at": self.created_at,
            "target_number": self.target_number,
            "last_callback": self.last_callback,
            "malformed_frames": self.malformed_frames,
            "dtmf": list(self.dtmf),
            "settings": dict(self.settings),
            "turn_count": self.turn_count,
            "turns": [t.as_dict() for t in self.turns],
        }


class TruthStore:
    """Bounded map call_id -> CallTruth, also reachable by session id."""

    def __init__(self, settings_snapshot: dict[str, Any], max_calls: int = MAX_CALLS) -> None:
        self.settings_snapshot = settings_snapshot
        self.max_calls = max_calls
        self._calls: OrderedDict[str, CallTruth] = OrderedDict()
        self._by_session: dict[str, str] = {}

    def register(self, call_id: str | None = None, session_id: str | None = None, **attrs: Any) -> CallTruth:
        """Create (or return the existing, still media-less) record for `call_id`."""
        call_id = call_id or str(uuid.uuid4())
        existing = self._calls.get(call_id)
        if existing is not None and not existing.media_connected:
            for key, value in attrs.items():
                setattr(existing, key, value)
            if session_id:
                self._index_session(session_id, existing)
            return existing
        truth = CallTruth(call_id=call_id, session_id=session_id or call_id, settings=self.settings_snapshot, **attrs)
        self._calls[call_id] = truth
        self._calls.move_to_end(call_id)
        self._by_session[truth.session_id] = call_id
        while len(self._calls) > self.max_calls:
            old_id, old = self._calls.popitem(last=False)
            if self._by_session.get(old.session_id) == old_id:
                del self._by_session[old.session_id]
        return truth

    def _index_session(self, session_id: str, truth: CallTruth) -> None:
        truth.session_id = session_id
        self._by_session[session_id] = truth.call_id

    def get(self, key: str) -> CallTruth | None:
        """Look a call up by call id, or else by session id."""
        truth = self._calls.get(key)
        if truth is None and key in self._by_session:
            truth = self._calls.get(self._by_session[key])
        return truth

    def __len__(self) -> int:
        return len(self._calls)

