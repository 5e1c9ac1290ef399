"""Named suites: how many of each user, for how long. Counts and duration can be overridden."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    api_users: int
    voice_users: int  # telephony callers
    browser_users: int
    relay_users: int
    backend_users: int  # of each: Redis, LLM, Speech, Cosmos
    duration_s: int
    spawn_rate: float
    turns_per_call: int
    description: str

    @property
    def users(self) -> int:
        return self.api_users + self.voice_users + self.browser_users + self.relay_users  # callers and API

    def split(self, total: int | None) -> dict[str, int]:
        """User counts per kind for `total` users in this suite's proportions (largest remainder),
        always with at least one telephony caller."""
        counts = {"api_users": self.api_users, "voice_users": self.voice_users,
                  "browser_users": self.browser_users, "relay_users": self.relay_users}
        if total is None:
            return counts
        shares = {k: total * v / self.users for k, v in counts.items()}
        split = {k: int(v) for k, v in shares.items()}
        for key in sorted(shares, key=lambda k: shares[k] - split[k], reverse=True)[: total - sum(split.values())]:
            split[key] += 1
        if split["voice_users"] == 0:
            donor = max(split, key=split.get)
            split[donor] -= 1
            split["voice_users"] += 1
        return split


SUITES: dict[str, Suite] = {
    "quick": Suite("quick", api_users=2, voice_users=3, browser_users=1, relay_users=1, backend_users=0, duration_s=60,
                   spawn_rate=2, turns_per_call=2,
                   description="smoke load: 2 API users, 3 phone + 1 browser callers, 1 relay listener for 60 s"),
    "standard": Suite("standard", api_users=10, voice_users=20, browser_users=5, relay_users=2, backend_users=0, duration_s=300,
                      spawn_rate=2, turns_per_call=3,
                      description="10 API users, 20 phone + 5 browser callers, 2 relay listeners for 5 min"),
    "comprehensive": Suite("comprehensive", api_users=25, voice_users=80, browser_users=20, relay_users=5, backend_users=0,
                           duration_s=900, spawn_rate=2, turns_per_call=4,
                           description="25 API users, 80 phone + 20 browser callers, 5 relay listeners for 15 min"),
}
