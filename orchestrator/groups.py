"""User groups: the parts of a suite that each run in their own Locust process.

Backend SDKs (the Speech SDK's native threads, slow client construction) would delay the callers'
audio frames if they shared the callers' gevent loop, so each group gets its own process and the
orchestrator merges their exact samples afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.suites import BACKEND_KINDS, INTEGRATION_KIND, Suite
from shapes.arrivals import schedule_from_spec

# group name -> the user-count keys (Locust options) it runs
GROUP_KINDS: dict[str, tuple[str, ...]] = {
    "api": ("api_users",),
    "websocket": ("voice_users", "browser_users", "relay_users"),
    "backend": BACKEND_KINDS,
    "integration": (INTEGRATION_KIND,),
}
# Locust user class -> the user-count key (a Locust option) that sets how many run
COUNT_KEY_OF_CLASS: dict[str, str] = {
    "ApiUser": "api_users", "TelephonyCaller": "voice_users", "BrowserCaller": "browser_users",
    "RelayListener": "relay_users", "RedisUser": "redis_users", "LLMUser": "llm_users", "SpeechUser": "speech_users",
    "CosmosUser": "cosmos_users", "ConsultationUser": INTEGRATION_KIND,
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
    arrivals: dict[str, object] = field(default_factory=dict)  # open model: the callers' --arrivals schedule
    start_after: float | str | None = None  # seconds after the run's start, or the name of a group to follow
    as_phase: bool = False  # a scenario of a plan: its own phase in report.json phases[]
    stop_timeout_s: int = 0  # seconds its users get to finish after its run time (0: the group's default)
    spawn_rate: float | None = None  # users started per second (None: the run's)

    @property
    def users(self) -> int:
        if self.arrivals:
            return int(self.arrivals["max_concurrent"])  # the most calls at once
        return self.shape_peak_users if self.shape else sum(self.counts.values())

    @property
    def locust_users(self) -> int:
        """Locust users to spawn: one dispatcher of an open model's calls, else every user."""
        return 1 if self.arrivals else self.users

    def describe(self) -> str:
        if self.arrivals:
            a = self.arrivals
            schedule = schedule_from_spec(a)[0]
            rate = f"{a['rate']:.3g}/{a['per']}" + (", then as its stages say" if a["stages"] else "")
            return (f"{self.name}: {round(schedule.expected_calls())} {', '.join(self.user_classes)} calls arriving at "
                    f"{rate} (at most {self.users} at once) over {self.run_time_s}s")
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


def one_after_another(plans: list[GroupPlan]) -> list[GroupPlan]:
    """The groups each starting when the one before it ended (a suite without --parallel)."""
    return [replace(plan, start_after=plans[i - 1].name if i else None) for i, plan in enumerate(plans)]


def start_offsets(plans: list[GroupPlan]) -> dict[str, float]:
    """When each group starts (s from the run's start), taking each group's run time as its length; a group
    following one that does not run starts at once."""
    offsets: dict[str, float] = {}
    by_name = {plan.name: plan for plan in plans}

    def offset(plan: GroupPlan, seen: tuple[str, ...] = ()) -> float:
        if plan.name not in offsets:
            rule = plan.start_after
            if isinstance(rule, str) and rule in by_name and rule not in seen:
                leader = by_name[rule]
                offsets[plan.name] = offset(leader, (*seen, plan.name)) + leader.run_time_s
            else:
                offsets[plan.name] = float(rule) if isinstance(rule, (int, float)) else 0.0
        return offsets[plan.name]

    for plan in plans:
        offset(plan)
    return offsets


def wall_time_s(plans: list[GroupPlan]) -> int:
    """How long the load runs: until the last group ends."""
    offsets = start_offsets(plans)
    return int(max((offsets[p.name] + p.run_time_s for p in plans), default=0))
