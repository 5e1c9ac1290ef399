"""`batches`: a number of calls placed in batches of concurrent calls: each batch's users start together, are
held for `--batch-hold` seconds, then all stop (a short gap with no users) before the next batch starts afresh.
With callers that place one call each (--calls-per-user 1), every batch is exactly its calls.
Phases: "batch 1 (10 calls)", "gap 1", "batch 2 (10 calls)", ..., the last batch holding the calls left over."""

from __future__ import annotations

import math
from argparse import Namespace

from shapes.base import Shape, ShapeOption, Step, check_seconds, check_users, resolve_spawn_rate, segment


class BatchShape(Shape):
    """`calls` users in batches of `batch_size`, each held `hold_s`, `gap_s` apart."""

    name = "batches"
    options = (
        ShapeOption("--batch-calls", int, 10, "batches: calls placed in all (one user per call)"),
        ShapeOption("--batch-size", int, 10, "batches: concurrent calls per batch (the last batch holds what is left)"),
        ShapeOption("--batch-hold", float, 30.0, "batches: seconds each batch lasts (long enough for its calls to end)"),
        ShapeOption("--batch-gap", float, 1.0, "batches: seconds with no users between batches"),
    )

    def __init__(self, calls: int, batch_size: int, hold_s: float, gap_s: float, spawn_rate: float = 0.0) -> None:
        check_users(calls, "--batch-calls")
        check_users(batch_size, "--batch-size")
        check_seconds(hold_s, "--batch-hold")
        check_seconds(gap_s, "--batch-gap")
        super().__init__()
        self.calls, self.batch_size, self.hold_s, self.gap_s = calls, min(batch_size, calls), hold_s, gap_s
        self.batches = math.ceil(calls / self.batch_size)
        self.duration_s = self.batches * hold_s + (self.batches - 1) * gap_s
        self.peak_users = self.batch_size
        self.spawn_rate = resolve_spawn_rate(spawn_rate, self.batch_size)

    @classmethod
    def from_options(cls, options: Namespace) -> BatchShape:
        return cls(options.batch_calls, options.batch_size, options.batch_hold, options.batch_gap, options.shape_spawn_rate)

    def batch_calls(self, index: int) -> int:
        """Calls of batch `index` (0-based): full batches, then what is left."""
        return min(self.batch_size, self.calls - index * self.batch_size)

    def users_at(self, elapsed_s: float) -> Step | None:
        if elapsed_s >= self.duration_s:
            return None
        index, into = segment(elapsed_s, self.hold_s + self.gap_s, self.batches)
        if into < self.hold_s:
            calls = self.batch_calls(index)
            return calls, self.spawn_rate, f"batch {index + 1} ({calls} call{'s' if calls != 1 else ''})"
        return 0, self.spawn_rate, f"gap {index + 1}"
