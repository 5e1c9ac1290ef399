#!/usr/bin/env python3
"""Run a voiceload suite headless and gate on its SLOs.

With no --host it starts the built-in local stack (a real redis-server and the reference voice
agent in target/) and tests that. Results go to results/<run-id>/ (report.json, report.html,
junit.xml, Locust's CSVs, logs); results/latest points at the newest run.

Exit codes: 0 pass (or warn without --strict) · 1 fail (or warn with --strict) · 2 bad input or
configuration · 3 target unreachable at preflight, or lacking what the run needs (--require, or any way for
a caller to reach it) · 4 generator overloaded, figures not trustworthy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from config import ConfigError, Settings, redact_url
from orchestrator.capabilities import Capability, absent_endpoints, backend_capabilities, because, missing_required, probe_target
from orchestrator.capacity import capacity_line, find_capacity
from orchestrator.command_line import CAPABILITY_NAMES, build_parser
from orchestrator.db_pool import POOL_KEYS, pool_findings, read_env_file
from orchestrator.exit_codes import EXIT_FAIL, EXIT_GENERATOR, EXIT_PASS, EXIT_UNREACHABLE, exit_code_for, fail_input
from orchestrator.group_jobs import group_job, run_groups
from orchestrator.groups import GroupPlan, wall_time_s
from orchestrator.http_basic import check_http_basic
from orchestrator.local_stack import StackError, start_local_stack
from orchestrator.locust_run import locust_env
from orchestrator.merge import GroupOutcome, join_group_files, merge_groups
from orchestrator.planning import (fit_plans, plan_run, printable_config, resolve_settings, run_groups_of,
                                   settings_seen_by_locust)
from orchestrator.preflight import check_reachable
from orchestrator.resource_monitor import ResourceMonitor
from orchestrator.run_files import compare_runs, ensure_writable, seed_report_paths, write_json_copy
from orchestrator.run_plan import PlanError, RunPlan, read_plan
from orchestrator.suites import SUITES, Suite
from orchestrator.test_types import result_fields as test_result_fields
from orchestrator.test_types import test_summary_line
from metrics.recorder import MetricsRecorder
from reporting.console import render_summary
from reporting.report import build_report
from reporting.writer import write_run_outputs

__all__ = ["EXIT_FAIL", "EXIT_GENERATOR", "EXIT_PASS", "build_parser", "exit_code_for", "group_job", "main", "plan_run",
           "resolve_settings", "run_groups_of", "SUITES"]


def _interrupt_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # handled like Ctrl-C: stop Locust gracefully and write the partial report


def fetch_target_counters(host: str, settings: Settings) -> dict[str, int] | None:
    """The reference target's own counters from its health endpoint (None if it does not answer)."""
    try:
        response = httpx.get(host + settings.target_profile.health.path, timeout=5.0, verify=not settings.insecure)
        return dict(response.json().get("counters", {}))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


@dataclass
class PlannedRun:
    """Everything decided before the load starts: the run's options, settings, groups and folder."""

    args: argparse.Namespace
    settings: Settings
    suite: Suite
    plans: list[GroupPlan]
    required: list[str]
    label: str
    started: dt.datetime
    run_dir: Path
    scenarios: RunPlan | None = None


@dataclass
class RunResult:
    """What the load left behind: the groups' outcomes (or http_basic's recorder), the target's capabilities."""

    host: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    outcomes: list[GroupOutcome] = field(default_factory=list)
    capabilities: list[Capability] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    http_basic: MetricsRecorder | None = None
    http_basic_fields: dict = field(default_factory=dict)
    target_counters: dict[str, int] | None = None
    resources: dict = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    """parse -> plan -> run -> write (or a worker, --compare, --web)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        from orchestrator.remote_worker import main as worker_main

        return worker_main(argv[1:])
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    suite = SUITES[args.test_suite]
    try:
        settings = resolve_settings(args, suite)
    except ConfigError as exc:
        return fail_input(str(exc))
    if args.compare:
        return compare_runs(args.compare, Path(settings.results_dir), args.output)
    if args.web:
        if problem := load_env_file(args.env):
            return fail_input(problem)
        from orchestrator.web_mode import run_web

        return run_web(args, settings)
    planned = plan(args, settings, suite)
    if not isinstance(planned, PlannedRun):
        return planned
    result = run(planned, argv)
    if isinstance(result, int):
        return result
    report = run_report(planned, result)
    write_run_outputs(report, planned.run_dir)
    for copy in seed_report_paths(planned.run_dir.parent, planned.started) + ([args.output] if args.output else []):
        write_json_copy(report, copy)
    render_summary(report)
    if args.test_type:
        print(test_summary_line(report["test"]))
    run_dir = planned.run_dir
    print(f"report: {run_dir / 'report.json'}  ·  {run_dir / 'report.html'}  ·  {run_dir / 'junit.xml'}")
    return exit_code_for(report, args.strict)


def load_env_file(name: str | None) -> str | None:
    """--env: load .env.<name> into the environment; the problem in one line, or None."""
    if name:
        try:
            os.environ.update(read_env_file(name))
        except ValueError as exc:
            return str(exc)
    return None


def plan(args: argparse.Namespace, settings: Settings, suite: Suite) -> PlannedRun | int:
    """Check the input and decide the groups and the run's folder; an exit code when the run stops here."""
    if args.expect_workers and (args.processes or args.parallel):
        return fail_input("--expect-workers drives remote workers one group at a time: leave out --workers/--parallel "
                          "(start more worker processes on the remote machines instead)")
    try:
        scenarios = read_plan(args.config)
    except (PlanError, ConfigError) as exc:
        return fail_input(f"{args.config}: {exc}")
    run_plan = plan_run(args, settings, suite, scenarios)
    if isinstance(run_plan, str):
        return fail_input(run_plan)
    plans = run_groups_of(run_plan, settings)
    if isinstance(plans, str):
        return fail_input(plans)
    required = [name.strip() for name in (args.require or "").split(",") if name.strip()]
    if unknown := [name for name in required if name not in CAPABILITY_NAMES]:
        return fail_input(f"--require {unknown[0]}: no such capability (known: {', '.join(CAPABILITY_NAMES)})")
    if args.print_config:
        print(json.dumps(printable_config(settings, plans, args, run_plan), indent=2))
        return EXIT_PASS
    if problem := load_env_file(args.env):
        return fail_input(problem)
    if missing := [pid for pid in args.monitor_pid if not psutil.pid_exists(pid)]:
        return fail_input(f"--monitor-pid {missing[0]}: no such process")
    results_dir = Path(settings.results_dir).resolve()
    if problem := ensure_writable(results_dir):
        return fail_input(problem)
    started = dt.datetime.now()
    label = args.test_type or ("capacity" if args.find_capacity else "plan" if scenarios is not None
                               else suite.name + (f"-{args.group}" if args.group else ""))
    run_dir = results_dir / f"{started:%Y%m%d-%H%M%S}-{label}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return PlannedRun(args, settings, suite, plans, required, label, started, run_dir, scenarios)


def run(planned: PlannedRun, argv: list[str]) -> RunResult | int:
    """Start the local stack if no host, check the target, fit the groups to what it serves, run the load."""
    args, settings = planned.args, planned.settings
    result = RunResult(host=settings.api_base_url, env=locust_env(argv, settings, None))
    stack = None
    try:
        if result.host is None:
            try:
                stack = start_local_stack(planned.run_dir / "logs",
                                          with_cosmos=any(p.counts.get("cosmos_users") for p in planned.plans))
            except StackError as exc:
                return fail_input(f"local stack could not start: {exc}")
            result.host = stack.base_url
        host = result.host
        if reason := check_reachable(host, settings.target_profile.health.path, verify=not settings.insecure):
            print(f"error: target {redact_url(host)} unreachable at preflight: {reason}", file=sys.stderr)
            return EXIT_UNREACHABLE
        result.env = locust_env(argv, settings, stack)
        result.capabilities = probe_target(host, settings) + backend_capabilities(settings_seen_by_locust(result.env, args))
        if short := missing_required(result.capabilities, planned.required):
            print(f"error: the target lacks what --require asks for: {because(short)}", file=sys.stderr)
            return EXIT_UNREACHABLE
        planned.plans, result.not_run, problem = fit_plans(planned.plans, result.capabilities, settings.profile)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_UNREACHABLE
        for line in result.not_run:
            print(f"voiceload: {line}", flush=True)
        plans = planned.plans
        print(f"voiceload: {planned.label} · profile {settings.profile} · "
              + (f"{len(plans)} group{'s' if len(plans) > 1 else ''}, {wall_time_s(plans)}s of load"
                 if plans else "10 requests") + f" · results in {planned.run_dir}", flush=True)
        watched = {**(stack.pids() if stack is not None else {}), **{f"pid {pid}": pid for pid in args.monitor_pid}}
        with ResourceMonitor(watched, args.monitor_interval) as monitor:
            if args.test_type == "http_basic":
                result.http_basic = MetricsRecorder()
                result.http_basic_fields = check_http_basic(host, settings, result.http_basic)
            else:
                result.outcomes = run_groups(plans, planned.run_dir, host, args, settings, planned.suite, result.env,
                                             absent_endpoints(result.capabilities))
        result.resources = monitor.summary()
        if stack is not None:
            result.target_counters = fetch_target_counters(host, settings)
    finally:
        if stack is not None:
            stack.stop()
    return result


def run_report(planned: PlannedRun, result: RunResult) -> dict:
    """report.json of the run: the groups' merged samples, the resources, and what the run type adds."""
    args, settings, plans = planned.args, planned.settings, planned.plans
    started = planned.started.astimezone(dt.timezone.utc)
    run = {"id": planned.run_dir.name, "suite": None if args.test_type or args.find_capacity or planned.scenarios
           else planned.suite.name, "test_type": args.test_type, "host": redact_url(result.host or ""),
           "profile": settings.profile, "shape": plans[0].shape.get("shape") if plans and plans[0].shape else None,
           "parallel": args.parallel, "command": result.env["VOICELOAD_COMMAND"],
           "started_at": started.isoformat(timespec="seconds")}
    ended = dt.datetime.now(dt.timezone.utc)
    if result.http_basic is not None:
        run.update({"ended_at": ended.isoformat(timespec="seconds"), "duration_s": round((ended - started).total_seconds(), 1),
                    "workers": 0, "users": 1, "interrupted": False})
        report = build_report(result.http_basic, settings, run)
    else:
        join_group_files(planned.run_dir, [o.name for o in result.outcomes])
        report = merge_groups(planned.run_dir, result.outcomes, settings, {**run, "ended_at": ended.isoformat(timespec="seconds")})
    report["resources"] = result.resources
    if result.target_counters is not None:  # the local target's session pool (the framework's DB pool)
        pool = {key: os.environ.get(key, default) for key, default in zip(POOL_KEYS, ("10", "10", "30", "1800"))}
        report["resources"]["db_pool"], findings = pool_findings(result.target_counters, pool)
        report["resources"]["bottlenecks"] += findings
    report["run"]["env"] = args.env
    report["capabilities"] = [c.as_dict() for c in result.capabilities]
    messages = report["summary"]["messages"]
    messages += result.not_run + [f"bottleneck: {line}" for line in report["resources"]["bottlenecks"]]
    ran = {outcome.name for outcome in result.outcomes}
    for group in [p for p in plans if p.name not in ran] if result.http_basic is None else ():
        report["run"]["interrupted"] = True
        messages.append(f"group {group.name} did not run: the run was interrupted")
    if args.test_type:
        report["test"] = {**test_result_fields(args.test_type, report, args), **result.http_basic_fields}
    if args.find_capacity:
        report["capacity"] = find_capacity(report["phases"])
        report["capacity"]["stopped_at_knee"] = report["capacity"]["knee"] is not None and not args.capacity_full
        messages.append(capacity_line(report["capacity"]) + (
            "; the run stopped there (--capacity-full runs every step)" if report["capacity"]["stopped_at_knee"] else ""))
    return report


if __name__ == "__main__":
    sys.exit(main())
