"""Playback health of the agent's audio: RFC 3550 interarrival jitter, underruns, real-time factor.

Pure: feed it (arrival time, audio duration) per received frame of one agent reply.
"""

from __future__ import annotations


class PlayoutStats:
    """Per reply. Transit differences follow RFC 3550 6.4.1 with the audio's own clock as the sender
    timestamp: D(i-1, i) = (R_i - R_i-1) - (S_i - S_i-1), J += (|D| - J) / 16."""

    __slots__ = ("jitter_ms", "underruns", "frames", "audio_ms", "_first_arrival", "_last_arrival", "_last_duration")

    def __init__(self) -> None:
        self.jitter_ms = 0.0
        self.underruns = 0
        self.frames = 0
        self.audio_ms = 0.0
        self._first_arrival: float | None = None
        self._last_arrival = 0.0
        self._last_duration = 0.0

    def add(self, arrival_s: float, duration_ms: float) -> None:
        if self._first_arrival is None:
            self._first_arrival = arrival_s
        else:
            gap_ms = (arrival_s - self._last_arrival) * 1000.0
            transit_delta = gap_ms - self._last_duration
            self.jitter_ms += (abs(transit_delta) - self.jitter_ms) / 16.0
            if transit_delta > self._last_duration:  # silent for more than one frame while the agent speaks
                self.underruns += 1
        self._last_arrival = arrival_s
        self._last_duration = duration_ms
        self.frames += 1
        self.audio_ms += duration_ms

    @property
    def real_time_factor(self) -> float | None:
        """Audio received / wall time it took (1.0 = real time; > 1 the agent sends faster than it plays)."""
        if self._first_arrival is None or self.frames < 2:
            return None
        elapsed_ms = (self._last_arrival - self._first_arrival) * 1000.0 + self._last_duration
        return self.audio_ms / elapsed_ms if elapsed_ms > 0 else None
