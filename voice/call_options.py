"""The caller options of the test types (--call-duration, --chunk-bytes, --chunk-interval-ms, --fault-rate,
--calls-per-user) and of open-model scenarios (--arrivals),
as the phone and browser callers read them from Locust's parsed options. No Locust import here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallOptions:
    """The caller options of the test types; 0 turns each off."""

    call_duration_s: float = 0.0  # a call lasts this long from its media socket opening, cycling its turns
    chunk_bytes: int = 0  # wire audio bytes per message (0: real time for chunk_interval_ms, or the codec's frames)
    chunk_interval_ms: float = 0.0  # ms between messages (0: real time for chunk_bytes, or the codec's frames)
    fault_rate: float = 0.0  # chance per turn of one fault injected on purpose
    calls_per_user: int = 0  # a caller places this many calls, then waits idle until it is stopped (0: no limit)
    arrivals: str = ""  # JSON of an open-model schedule (users/arrivals.py): the caller starts calls on it instead

    @classmethod
    def from_options(cls, options) -> "CallOptions":
        """From Locust's parsed options (None, or options without these: all off)."""
        return cls(float(getattr(options, "call_duration", 0.0) or 0.0), int(getattr(options, "chunk_bytes", 0) or 0),
                   float(getattr(options, "chunk_interval_ms", 0.0) or 0.0), float(getattr(options, "fault_rate", 0.0) or 0.0),
                   int(getattr(options, "calls_per_user", 0) or 0), str(getattr(options, "arrivals", "") or ""))
