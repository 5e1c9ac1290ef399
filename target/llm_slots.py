"""Finite LLM capacity: a semaphore of `llm_slots` whose slots are held for a whole modelled generation.

A slot is held from acquisition for llm_ttft + reply_tokens / tokens_per_s and released by the event
loop's timer even while the reply's audio streams, so beyond `size` concurrent turns callers queue:
this is what gives a load test a real knee.
"""

from __future__ import annotations

import asyncio


class LlmSlots:
    """A counting semaphore with held-for-a-duration slots and busy/queued gauges."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self.queued = 0
        self._sem = asyncio.Semaphore(size)

    async def acquire(self, hold_s: float) -> None:
        """Wait for a free slot; it is released by itself `hold_s` seconds after acquisition."""
        self.queued += 1
        try:
            await self._sem.acquire()
        finally:
            self.queued -= 1
        self.busy += 1
        asyncio.get_running_loop().call_later(hold_s, self._release)

    def _release(self) -> None:
        self.busy -= 1
        self._sem.release()

    def snapshot(self) -> dict[str, int]:
        return {"size": self.size, "busy": self.busy, "queued": self.queued}
