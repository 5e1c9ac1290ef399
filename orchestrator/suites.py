"""Named suites: which user groups run, with how many users each, for how long.

A suite is made of groups (see orchestrator/groups.py): API users, WebSocket callers, backend
services. Each group runs in its own Locust process, one after another (or all at once with
--parallel), and their exact samples are merged into one report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# User-count keys of the API and WebSocket groups, in the order a total is shared out.
FRONT_KINDS = ("api_users", "voice_users", "browser_users", "relay_users")
BACKEND_KINDS = ("redis_users", "llm_users", "speech_users", "cosmos_users")
INTEGRATION_KIND = "integration_users"


@dataclass(frozen=True)
class Suite:
    name: str
    api_users: int
    voice_users: int  # telephony callers
    browser_users: int
    relay_users: int
    backend_users: int  # of each: Redis, LLM, Speech, Cosmos
    integration_users: int = 0  # whole medical consultations (users/flows.py)
    durations_s: dict[str, int] = field(default_factory=dict)  # per group: api, websocket, backend
    spawn_rate: float = 2
    turns_per_call: int = 2
    description: str = ""

    @property
    def users(self) -> int:
        return self.api_users + self.voice_users + self.browser_users + self.relay_users  # callers and API

    def split(self, total: int | None) -> dict[str, int]:
        """User counts per kind for `total` users in this suite's proportions (largest remainder),
        always with at least one telephony caller."""
        counts = {kind: getattr(self, kind) for kind in FRONT_KINDS}
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
    "quick": Suite("quick", api_users=2, voice_users=3, browser_users=1, relay_users=1, backend_users=1, integration_users=4,
                   durations_s={"api": 15, "websocket": 40, "backend": 20, "integration": 30}, spawn_rate=2, turns_per_call=2,
                   description="smoke load: 2 API users for 15 s, then 3 phone + 1 browser callers and 1 relay "
                   "listener for 40 s, then 1 each of the Redis, LLM, Speech and Cosmos users for 20 s, then 4 "
                   "consultation callers (whole medical scenarios) for 30 s"),
    "standard": Suite("standard", api_users=10, voice_users=20, browser_users=5, relay_users=2, backend_users=2,
                      integration_users=10, durations_s={"api": 60, "websocket": 300, "backend": 120, "integration": 300},
                      spawn_rate=2, turns_per_call=3,
                      description="10 API users for 1 min, 20 phone + 5 browser callers and 2 relay listeners for "
                      "5 min, 2 of each backend user for 2 min, 10 consultation callers for 5 min"),
    "comprehensive": Suite("comprehensive", api_users=25, voice_users=80, browser_users=20, relay_users=5, backend_users=5,
                           integration_users=40,
                           durations_s={"api": 180, "websocket": 900, "backend": 300, "integration": 900},
                           spawn_rate=2, turns_per_call=4,
                           description="25 API users for 3 min, 80 phone + 20 browser callers and 5 relay listeners "
                           "for 15 min, 5 of each backend user for 5 min, 40 consultation callers for 15 min"),
}
