"""User groups: the parts of a suite that each run in their own Locust process.

Backend SDKs (the Speech SDK's native threads, slow client construction) would delay the callers'
audio frames if they shared the callers' gevent loop, so each group gets its own process and the
orchestrator merges their exact samples afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.suites import BACKEND_KINDS, INTEGRATION_KIND, Suite

# group name -> the user-count keys (Locust options) it runs
GROUP_KINDS: dict[str, tuple[str, ...]] = {
    "api": ("api_users",),
    "websocket": ("voice_users", "browser_users", "relay_users"),
    "backend": BACKEND_KINDS,
    "integration": (INTEGRATION_KIND,),
}
# seconds users get to finish after the run time: a whole consultation takes about 20 s
STOP_TIMEOUT_S = {"integration": 30}
DEFAULT_STOP_TIMEOUT_S = 10
GROUP_NAMES = tuple(GROUP_KINDS)


@dataclass(frozen=True)
class GroupPlan:
    name: str
    counts: dict[str, int]  # every user-count key; this group's non-zero, others 0
    run_time_s: int
    shape: dict[str, object] = field(default_factory=dict)  # --shape and its options: the shape sets users and time
    user_classes: tuple[str, ...] = ()  # only these Locust user classes (default: by counts)
    shape_peak_users: int = 0  # with a shape: the most users it runs at once

    @property
    def users(self) -> int:
        return self.shape_peak_users if self.shape else sum(self.counts.values())

    def describe(self) -> str:
        if self.shape:
            return (f"{self.name}: up to {self.users} {', '.join(self.user_classes)} under the {self.shape['shape']} shape "
                    f"for {self.run_time_s}s")
        parts = [f"{n} {kind.removesuffix('_users').replace('voice', 'phone')}" for kind, n in self.counts.items() if n]
        return f"{self.name}: {', '.join(parts)} for {self.run_time_s}s"


def plan_groups(suite: Suite, counts: dict[str, int], only: str | None, run_time_s: int | None) -> list[GroupPlan]:
    """The groups to run, in order, each with its counts and run time (`run_time_s` overrides the
    suite's per-group durations); groups with no users are left out."""
    names = [only] if only else list(GROUP_NAMES)
    plans = []
    for name in names:
        group_counts = {kind: (counts.get(kind, 0) if kind in GROUP_KINDS[name] else 0) for kinds in GROUP_KINDS.values() for kind in kinds}
        if sum(group_counts.values()) == 0:
            continue
        plans.append(GroupPlan(name, group_counts, run_time_s or suite.durations_s[name]))
    return plans


def wall_time_s(plans: list[GroupPlan], parallel: bool) -> int:
    """How long the load runs: the longest group when parallel, else their sum."""
    times = [p.run_time_s for p in plans]
    return (max(times) if parallel else sum(times)) if times else 0
