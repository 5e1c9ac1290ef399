"""A run plan as data: the `scenarios:` list of a --config YAML, like k6's `options.scenarios`.

    scenarios:
      - name: warmup
        users: {TelephonyCaller: 2, BrowserCaller: 1}   # Locust user class -> how many
        duration: 60s
      - name: rush
        arrivals: {rate: 2, per: s, max_concurrent: 50}  # open model: calls start on a Poisson schedule
        duration: 2m
        start_after: warmup                                # a scenario's name, or seconds after the start
      - name: ramp
        shape: {name: ramp, ramp_max_users: 20}           # a load shape (shapes/) with its options

Scenarios without `start_after` start together. Each becomes a group of the run (its own Locust process)
and its own phase in report.json phases[]. Validation errors are one line naming the key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config import read_config_file
from orchestrator.arg_types import parse_duration
from orchestrator.groups import COUNT_KEY_OF_CLASS, GROUP_KINDS, STOP_TIMEOUT_S, GroupPlan
from shapes import ShapeError, default_options, shape_from_options

CALLER_CLASSES = ("TelephonyCaller", "BrowserCaller")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also the scenario's results folder


class PlanError(ValueError):
    """A plan that cannot run: one line naming the key."""


def _seconds(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a duration such as 90s, 5m or 1h30m")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError("must be positive")
        return int(round(value))
    try:
        return parse_duration(str(value))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


class Stage(BaseModel):
    """A ramping arrival rate: over `duration` the rate moves to `target` (calls per the schedule's `per`)."""

    model_config = ConfigDict(extra="forbid")
    duration: int
    target: float = Field(ge=0)

    _duration = field_validator("duration", mode="before")(_seconds)


class Arrivals(BaseModel):
    """An open-model scenario: calls start on a Poisson schedule, whatever the agent's speed. With `callcenter`
    (the callcenter shape's options, e.g. {callcenter_hours: 8-18, calls_per_hour_peak: 400}) the rate follows
    its day instead: every call of each hour arrives within that hour's share of the duration."""

    model_config = ConfigDict(extra="forbid")
    rate: float = Field(0.0, ge=0)  # calls per `per`
    per: Literal["s", "m", "h"] = "s"
    max_concurrent: int = Field(50, gt=0)  # a call due while this many still run is dropped
    stages: list[Stage] = []
    caller: Literal["TelephonyCaller", "BrowserCaller"] = "TelephonyCaller"
    seed: int = 1  # the schedule's random generator: the same plan offers calls at the same moments
    callcenter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _some_rate(self) -> Arrivals:
        if self.callcenter is not None:
            if self.rate or self.stages:
                raise ValueError("give either callcenter or rate/stages")
            self.callcenter_day()
        elif self.rate <= 0 and not any(stage.target > 0 for stage in self.stages):
            raise ValueError("rate must be above 0 (or a stage must ramp above 0)")
        return self

    def callcenter_day(self) -> tuple[float, list[dict[str, float]], float]:
        """(starting rate per s, stages, duration s) of the callcenter shape's day, compressed: each hour's calls
        arrive within its slot, stepping (over at most 1 s) to the next hour's rate."""
        try:
            day = shape_from_options(default_options(shape="callcenter", **(self.callcenter or {})))
        except (ShapeError, TypeError) as exc:
            raise ValueError(f"callcenter: {exc}") from None
        slot = day.hour_s
        rates = [calls / slot for _, calls, _ in day.plan]
        step = min(1.0, slot / 10)
        stages = []
        for index, rate in enumerate(rates):
            stages += [{"duration_s": slot - step, "target": rate},
                       {"duration_s": step, "target": rates[min(index + 1, len(rates) - 1)]}]
        return rates[0], stages, day.duration_s


class Scenario(BaseModel):
    """One part of the run: fixed users, a load shape, or open-model arrivals, for a duration."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    users: dict[str, int] | None = None
    shape: dict[str, Any] | None = None
    arrivals: Arrivals | None = None
    duration: int | None = None
    start_after: float | str | None = None
    spawn_rate: float | None = Field(None, gt=0)
    own_phase: bool = True  # its samples make a phase of report.json phases[] under its name (a suite's groups: no)

    _duration = field_validator("duration", mode="before")(lambda v: None if v is None else _seconds(v))

    @field_validator("users")
    @classmethod
    def _known_classes(cls, users: dict[str, int] | None) -> dict[str, int] | None:
        for name, count in (users or {}).items():
            if name not in COUNT_KEY_OF_CLASS:
                raise ValueError(f"unknown user class {name!r} (known: {', '.join(COUNT_KEY_OF_CLASS)})")
            if not isinstance(count, int) or count < 0:
                raise ValueError(f"{name}: a count of users, 0 or more")
        if users is not None and not sum(users.values()):
            raise ValueError("no users")
        return users

    @field_validator("start_after")
    @classmethod
    def _after(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, (int, float)) and value < 0:
            raise ValueError("seconds must be 0 or more")
        return value

    @model_validator(mode="after")
    def _one_kind_of_load(self) -> Scenario:
        kinds = [k for k in ("users", "shape", "arrivals") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of users, shape or arrivals")
        if self.duration is None and self.shape is None and (self.arrivals is None or self.arrivals.callcenter is None):
            raise ValueError("duration is required (e.g. 90s, 5m) unless a shape sets it")
        if self.shape is not None:
            self.shape_built()
        return self

    def shape_options(self) -> dict[str, Any]:
        options = dict(self.shape or {})
        return {"shape": options.pop("name", None), **options}

    def shape_built(self):
        """The shape this scenario names, built from its options; ValueError with the shape's own words."""
        options = self.shape_options()
        if not options["shape"]:
            raise ValueError("shape needs a name (e.g. {name: ramp, ramp_max_users: 20})")
        try:
            return shape_from_options(default_options(**options))
        except (ShapeError, TypeError) as exc:
            raise ValueError(f"shape: {exc}") from None


class RunPlan(BaseModel):
    """The scenarios of a run, in the order they are listed."""

    model_config = ConfigDict(extra="forbid")
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> RunPlan:
        names = [s.name for s in self.scenarios]
        if duplicate := next((n for n in names if names.count(n) > 1), None):
            raise ValueError(f"two scenarios are named {duplicate!r}")
        for scenario in self.scenarios:
            rule = scenario.start_after
            if isinstance(rule, str) and rule not in names:
                raise ValueError(f"scenario {scenario.name!r}: start_after {rule!r} names no scenario")
        for scenario in self.scenarios:
            seen, rule = [scenario.name], scenario.start_after
            while isinstance(rule, str):
                if rule in seen:
                    raise ValueError(f"scenario {scenario.name!r}: start_after goes round in a circle")
                seen.append(rule)
                rule = next(s for s in self.scenarios if s.name == rule).start_after
        return self


def _where(error: dict, raw: dict) -> str:
    """`scenarios[1] (rush).arrivals.rate` from a pydantic error location."""
    parts, node = [], raw
    for step in error["loc"]:
        if isinstance(step, int):
            name = node[step].get("name") if isinstance(node, list) and step < len(node) and isinstance(node[step], dict) else None
            parts[-1] += f"[{step}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(step))
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "scenarios"


def parse_plan(raw: dict) -> RunPlan:
    """The plan from a YAML's top level (its `scenarios:` key); PlanError in one line naming the key."""
    try:
        return RunPlan.model_validate({"scenarios": raw.get("scenarios")})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = {"extra_forbidden": "unknown key",
                   "string_pattern_mismatch": "letters, digits, _ . - only (it names the scenario's results folder)",
                   }.get(first["type"], first["msg"].removeprefix("Value error, "))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PlanError(f"{_where(first, {'scenarios': raw.get('scenarios')})}: {message}{more}") from None


def read_plan(config_file: str | Path | None) -> RunPlan | None:
    """The plan of a --config YAML that has `scenarios:`, else None; PlanError (or ConfigError) in one line."""
    if not config_file:
        return None
    data = read_config_file(Path(config_file))
    return parse_plan(data) if "scenarios" in data else None


def plan_groups_of(plan: RunPlan, default_spawn_rate: float) -> list[GroupPlan]:
    """Each scenario as a group of the run (its own Locust process), in the plan's order."""
    groups = []
    zero = {kind: 0 for kinds in GROUP_KINDS.values() for kind in kinds}
    for scenario in plan.scenarios:
        common = {"start_after": scenario.start_after, "as_phase": scenario.own_phase}
        if scenario.users is not None:
            counts = {**zero, **{COUNT_KEY_OF_CLASS[c]: n for c, n in scenario.users.items()}}
            classes = tuple(c for c, n in scenario.users.items() if n)
            stop = STOP_TIMEOUT_S["integration"] if "ConsultationUser" in classes else 0
            groups.append(GroupPlan(scenario.name, counts, scenario.duration or 0, user_classes=classes,
                                    stop_timeout_s=stop, spawn_rate=scenario.spawn_rate or default_spawn_rate, **common))
        elif scenario.shape is not None:
            built = scenario.shape_built()
            groups.append(GroupPlan(scenario.name, zero, int(round(built.duration_s)), shape=scenario.shape_options(),
                                    user_classes=("TelephonyCaller",), shape_peak_users=built.peak_users, **common))
        else:
            arrivals = scenario.arrivals
            schedule = {"rate": arrivals.rate, "per": arrivals.per, "max_concurrent": arrivals.max_concurrent,
                        "duration_s": scenario.duration, "seed": arrivals.seed,
                        "stages": [{"duration_s": s.duration, "target": s.target} for s in arrivals.stages]}
            if arrivals.callcenter is not None:
                rate, stages, duration = arrivals.callcenter_day()
                schedule.update(rate=rate, per="s", stages=stages, duration_s=scenario.duration or duration)
            groups.append(GroupPlan(scenario.name, zero, int(round(schedule["duration_s"])), user_classes=(arrivals.caller,),
                                    arrivals=schedule, spawn_rate=1.0, **common))
    return groups


def arrivals_option(group: GroupPlan) -> str | None:
    """The callers' --arrivals JSON of an open-model group, else None."""
    return json.dumps(group.arrivals, separators=(",", ":")) if group.arrivals else None
