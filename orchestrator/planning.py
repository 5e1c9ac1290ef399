"""From the command line to the groups of a run: the settings in force, the plan (a --config file's
scenarios, a test type, the capacity finder or a suite), and the plan fitted to what the target serves."""

from __future__ import annotations

import argparse
import dataclasses

from pydantic import ValidationError

from config import Settings, load_settings
from orchestrator.capabilities import CALLER_KINDS, KIND_NEEDS, Capability, because, fit_counts, lacking, no_call_channel
from orchestrator.groups import COUNT_KEY_OF_CLASS, GroupPlan, one_after_another, plan_groups
from orchestrator.run_plan import RunPlan, Scenario, plan_groups_of
from orchestrator.shared_options import USER_COUNT_DESTS
from orchestrator.suites import BACKEND_KINDS, INTEGRATION_KIND, Suite
from orchestrator.test_types import shape_options
from orchestrator.test_types import validate as validate_test_type
from shapes import ShapeError


def resolve_settings(args: argparse.Namespace, suite: Suite) -> Settings:
    """Defaults < the suite's < --config YAML < environment < command line: a value the YAML, the environment
    or the command line gives wins over the suite's (turns per call, users, spawn rate, run time)."""
    overrides = {"api_base_url": args.host, "profile": args.profile, "results_dir": args.results_dir,
                 "turns_per_call": args.turns_per_call, "insecure": args.insecure or None,
                 "barge_in_rate": args.barge_in_rate, "users": args.users, "spawn_rate": args.spawn_rate,
                 "test_duration": args.run_time}
    settings = load_settings(overrides, config_file=args.config)
    if "turns_per_call" not in settings.model_fields_set:
        settings.turns_per_call = suite.turns_per_call
    if "spawn_rate" not in settings.model_fields_set:
        settings.spawn_rate = suite.spawn_rate
    return settings


def run_time_override(settings: Settings) -> int | None:
    """Seconds every group runs when -t, TEST_DURATION or the YAML's test_duration says so, else None (the
    suite's own per-group durations)."""
    return settings.test_duration if "test_duration" in settings.model_fields_set else None


def shape_scenario(shape: dict[str, object]) -> Scenario:
    """Phone callers under a load shape (a test type, the capacity finder): the shape sets users and time, and
    names the phases (steps, waves, bursts) itself."""
    options = dict(shape)
    return Scenario(name="websocket", shape={"name": options.pop("shape"), **options}, own_phase=False)


def plan_run(args: argparse.Namespace, settings: Settings, suite: Suite, scenarios: RunPlan | None = None) -> RunPlan | None | str:
    """The run as a plan: the --config file's scenarios, else the preset a test type, the capacity finder or
    the suite makes (None for http_basic, which places no load); or one line about bad input."""
    if scenarios is not None and (args.find_capacity or args.test_type):
        return "--config holds a run plan (scenarios:): leave out --test-type and --find-capacity"
    try:
        if args.find_capacity:
            if args.test_type:
                return "--find-capacity and --test-type are two kinds of run: choose one"
            if args.capacity_start > args.capacity_max:
                return f"--capacity-start ({args.capacity_start}) must not exceed --capacity-max ({args.capacity_max})"
            return RunPlan(scenarios=[shape_scenario({
                "shape": "ramp", "ramp_start_users": args.capacity_start, "ramp_increment": args.capacity_step,
                "ramp_max_users": args.capacity_max, "ramp_step_duration": args.capacity_step_duration})])
        if args.test_type:
            if problem := validate_test_type(args):
                return problem
            return None if args.test_type == "http_basic" else RunPlan(scenarios=[shape_scenario(shape_options(args))])
    except ShapeError as exc:
        return str(exc)
    except ValidationError as exc:  # the shape's own one-line error
        return exc.errors()[0]["msg"].removeprefix("Value error, ").removeprefix("shape: ")
    return scenarios if scenarios is not None else suite_plan(args, settings, suite)


def run_groups_of(plan: RunPlan | None, settings: Settings) -> list[GroupPlan] | str:
    """The plan's groups, or one line when one runs more users than MAX_USERS allows."""
    groups = plan_groups_of(plan, settings.spawn_rate) if plan is not None else []
    for group in groups:
        if group.users > settings.max_users:
            return f"{group.users} users in group {group.name} exceed MAX_USERS={settings.max_users}"
    return groups


def suite_plan(args: argparse.Namespace, settings: Settings, suite: Suite) -> RunPlan | str:
    """A suite as a plan: its groups with the user counts the command line gives, one after another (or all
    at once with --parallel)."""
    run_time = run_time_override(settings)
    backend_users = suite.backend_users if args.backend_users is None else args.backend_users
    if backend_users < 0:
        return "--backend-users must be 0 or more"
    counts = suite.split(settings.users)
    counts.update({kind: backend_users for kind in BACKEND_KINDS})
    counts[INTEGRATION_KIND] = suite.integration_users
    for kind in USER_COUNT_DESTS:  # the counts the command line gives win
        if getattr(args, kind, None) is not None:
            counts[kind] = getattr(args, kind)
    groups = plan_groups(suite, counts, args.group, run_time)
    if not groups:
        return f"group {args.group} has no users in this run (see -u and --backend-users)"
    class_of = {kind: name for name, kind in COUNT_KEY_OF_CLASS.items()}
    if not args.parallel:
        groups = one_after_another(groups)
    return RunPlan(scenarios=[
        Scenario(name=group.name, users={class_of[kind]: n for kind, n in group.counts.items() if n},
                 duration=group.run_time_s, start_after=group.start_after, own_phase=False) for group in groups])


def fit_plans(plans: list[GroupPlan], capabilities: list[Capability], profile: str) -> tuple[list[GroupPlan], list[str], str | None]:
    """The groups with every user kind the target cannot serve left out (orchestrator.capabilities.fit_counts),
    one line per kind left out, and the reason the run cannot go on at all (callers planned but no phone line
    and no browser socket; a shape of phone callers without a phone line; nothing left to run), or None."""
    fitted, lines = [], []
    callers = any(plan.shape or plan.arrivals or any(plan.counts.get(kind) for kind in CALLER_KINDS) for plan in plans)
    if callers and (why := no_call_channel(capabilities)):
        return [], lines, f"no caller can reach the agent with profile {profile} (check --profile and --host): {why}"
    for plan in plans:
        if plan.shape or plan.arrivals:  # callers under a load shape or on an arrival schedule
            kind = COUNT_KEY_OF_CLASS[plan.user_classes[0]]
            if short := lacking(capabilities, KIND_NEEDS[kind]):
                return [], lines, f"{plan.describe()} needs {'a phone line' if kind == 'voice_users' else 'a browser socket'}: {because(short)}"
            fitted.append(plan)
            continue
        counts, kind_lines = fit_counts(plan.counts, capabilities)
        lines += kind_lines
        if sum(counts.values()):
            fitted.append(dataclasses.replace(plan, counts=counts))
        else:
            lines.append(f"group {plan.name} not run: none of its users has what it needs")
    if plans and not fitted:
        return [], lines, "nothing of this run can go ahead: " + "; ".join(lines)
    return fitted, lines, None


def settings_seen_by_locust(env: dict[str, str], args: argparse.Namespace) -> Settings:
    """The settings the Locust processes will resolve from their environment (the local stack's services
    included) and the --config file: what decides which backend services are configured. (The same file and
    environment, less the stack's additions, were already valid for resolve_settings.)"""
    return load_settings(env=env, config_file=args.config)


def printable_config(settings: Settings, plans: list[GroupPlan], args: argparse.Namespace, plan: RunPlan | None = None) -> dict:
    """--print-config: the resolved settings (secrets redacted) and the groups that would run, with the
    values really used (suite defaults < YAML < environment < command line), before preflight; and the run as
    a plan (`scenarios:`) that a --config file could hold."""
    return {**settings.redacted(), **({"scenarios": plan.model_dump(exclude_defaults=True)["scenarios"]} if plan else {}),
            "run_plan": {
        "groups": [{"name": p.name, "users": {k: v for k, v in p.counts.items() if v} or p.users, "run_time_s": p.run_time_s,
                    "start_after": p.start_after, **({"shape": p.shape} if p.shape else {}),
                    **({"arrivals": p.arrivals} if p.arrivals else {})} for p in plans],
        "parallel": args.parallel, "spawn_rate": settings.spawn_rate, "turns_per_call": settings.turns_per_call,
        "note": "preflight may leave out users whose endpoints the target lacks or whose services are not configured"}}
