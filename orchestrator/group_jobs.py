"""A run's groups as Locust child processes: each group's command line (its folder, user counts, caller
options, the endpoints the target lacks, its samples file) and running them when their start rules say."""

from __future__ import annotations

import argparse
from pathlib import Path

from config import Settings
from orchestrator.groups import DEFAULT_STOP_TIMEOUT_S, STOP_TIMEOUT_S, GroupPlan
from orchestrator.locust_run import LocustJob, locust_command, run_locusts
from orchestrator.merge import SAMPLES_FILE, GroupOutcome
from orchestrator.ports import free_port
from orchestrator.run_plan import arrivals_option
from orchestrator.suites import Suite
from orchestrator.test_types import ONE_CALL_EACH


def group_job(index: int, plan: GroupPlan, run_dir: Path, host: str, args: argparse.Namespace, settings: Settings,
              suite: Suite, absent: list[str]) -> LocustJob:
    """The Locust command of one group: its own folder, its user counts, the endpoints the target lacks
    (`absent`: every user leaves them out), and a samples file to merge."""
    group_dir = run_dir / plan.name
    processes = args.processes if args.processes and args.processes > 1 else None
    port = free_port() if processes else None  # groups running at once must not share Locust's master port
    remote = {"master": True, "expect_workers": args.expect_workers, "expect_workers_max_wait": 120,
              "master_bind_host": args.master_bind_host,
              # a port per group: workers of the previous group may still be saying goodbye on its port
              "master_bind_port": args.master_bind_port + index} if args.expect_workers else {}
    timed = not plan.shape  # a shape sets the users over time and ends by itself
    command = locust_command(group_dir, host, plan.locust_users if timed else None, plan.spawn_rate or settings.spawn_rate,
                             plan.run_time_s if timed else None, {
        "target_profile": settings.profile, "suite": None if args.test_type or args.find_capacity or plan.as_phase else suite.name, **plan.counts, **plan.shape,
        "turns_per_call": settings.turns_per_call, "barge_in_rate": args.barge_in_rate,
        "voiceload_config": args.config, "call_log": run_dir / "calls.jsonl", "samples_file": group_dir / SAMPLES_FILE,
        "processes": processes, "master_bind_port": port, "master_port": port, **remote, **caller_options(args),
        "absent_endpoints": ",".join(absent), "stop_at_broken_phase": args.find_capacity and not args.capacity_full,
        "arrivals": arrivals_option(plan),
    }, plan.user_classes, plan.stop_timeout_s or STOP_TIMEOUT_S.get(plan.name, DEFAULT_STOP_TIMEOUT_S))
    return LocustJob(plan.name, command, group_dir, plan.run_time_s, plan.start_after, f"group {plan.describe()}")


def caller_options(args: argparse.Namespace) -> dict[str, object]:
    """The test type's call length, audio chunking and injected faults, as the callers' Locust options."""
    if not args.test_type or args.test_type == "http_basic":
        return {}
    options: dict[str, object] = {"call_duration": args.duration,
                                  "calls_per_user": 1 if args.test_type in ONE_CALL_EACH else None}
    if args.chunk_size:
        options["chunk_bytes"] = int(args.chunk_size * 1024)
    if args.interval:
        options["chunk_interval_ms"] = args.interval
    if args.test_type == "resilience":
        options["fault_rate"] = args.error_rate
    return options


def run_groups(plans: list[GroupPlan], run_dir: Path, host: str, args: argparse.Namespace, settings: Settings,
               suite: Suite, env: dict[str, str], absent: list[str]) -> list[GroupOutcome]:
    """Each group's Locust, when its start rule says (at once, after seconds, after another group); stops
    early on Ctrl-C / SIGTERM: the groups not yet started are left out of the outcomes."""
    jobs = [group_job(index, plan, run_dir, host, args, settings, suite, absent) for index, plan in enumerate(plans)]
    runs = run_locusts(jobs, env, verbose=args.verbose, progress_every_s=args.progress_every)
    return [GroupOutcome(job.name, r.exit_code, r.interrupted, job.total_s, plan.users, plan.as_phase)
            for job, plan, r in zip(jobs, plans, runs) if r is not None]
