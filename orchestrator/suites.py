"""Named suites: how many of each user, for how long. Counts and duration can be overridden."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    api_users: int
    voice_users: int
    duration_s: int
    spawn_rate: float
    turns_per_call: int
    description: str

    @property
    def users(self) -> int:
        return self.api_users + self.voice_users


SUITES: dict[str, Suite] = {
    "quick": Suite("quick", api_users=2, voice_users=4, duration_s=60, spawn_rate=2, turns_per_call=2,
                   description="smoke load: 2 API users + 4 phone callers for 60 s"),
    "standard": Suite("standard", api_users=10, voice_users=25, duration_s=300, spawn_rate=2, turns_per_call=3,
                      description="10 API users + 25 phone callers for 5 min"),
    "comprehensive": Suite("comprehensive", api_users=25, voice_users=100, duration_s=900, spawn_rate=2, turns_per_call=4,
                           description="25 API users + 100 phone callers for 15 min"),
}
