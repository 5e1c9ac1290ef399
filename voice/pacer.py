"""Send audio on an absolute schedule: frame n is due at t0 + n * frame_ms, never sleep(frame_ms) in a loop.

A late frame does not push later frames back; its lateness is measured against its own deadline,
so a slow generator shows up as `frame_send_lateness` instead of quietly stretching the call.
"""

from __future__ import annotations

import time
from typing import Callable


class AudioPacer:
    def __init__(self, frame_ms: float, t0: float | None = None,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] | None = None) -> None:
        if sleep is None:
            import gevent

            sleep = gevent.sleep
        self.frame_s = frame_ms / 1000.0
        self.clock = clock
        self.sleep = sleep
        self.t0 = clock() if t0 is None else t0

    def deadline(self, index: int) -> float:
        """When frame `index` is due (perf_counter seconds)."""
        return self.t0 + index * self.frame_s

    def wait_for(self, index: int) -> float:
        """Sleep until frame `index` is due; return how late we are now, in ms (0 if on time)."""
        due = self.deadline(index)
        now = self.clock()
        if now < due:
            self.sleep(due - now)
            now = self.clock()
        return max(0.0, (now - due) * 1000.0)
