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
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import psutil

from config import BUILTIN_PROFILES, ENDPOINT_NAMES, ConfigError, Settings, load_settings, redact_url
from orchestrator.capabilities import (BACKENDS, CALLER_KINDS, KIND_NEEDS, Capability, absent_endpoints, backend_capabilities,
                                       because, fit_counts, lacking, missing_required, no_call_channel, probe_target)
from orchestrator.local_stack import StackError, start_local_stack
from orchestrator.groups import DEFAULT_STOP_TIMEOUT_S, GROUP_NAMES, STOP_TIMEOUT_S, GroupPlan, plan_groups, wall_time_s
from orchestrator.locust_run import LocustJob, locust_command, locust_env, run_locusts
from orchestrator.arg_types import non_negative_int, positive_float, positive_int
from orchestrator.one_line_errors import OneLineErrors
from orchestrator.merge import SAMPLES_FILE, GroupOutcome, join_group_files, merge_groups
from orchestrator.ports import free_port
from orchestrator.resource_monitor import ResourceMonitor
from orchestrator.preflight import check_reachable
from orchestrator.capacity import capacity_line, find_capacity
from orchestrator.db_pool import ENVIRONMENTS, POOL_KEYS, pool_findings, read_env_file
from orchestrator.http_basic import check_http_basic
from orchestrator.suites import BACKEND_KINDS, INTEGRATION_KIND, SUITES, Suite
from orchestrator.test_types import ONE_CALL_EACH, add_test_type_options, shape_options, test_summary_line
from orchestrator.test_types import result_fields as test_result_fields
from orchestrator.test_types import validate as validate_test_type
from metrics.recorder import MetricsRecorder
from reporting.console import render_summary
from reporting.report import build_report
from reporting.writer import write_run_outputs
from shapes import ShapeError, default_options as default_shape_options, shape_from_options

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_GENERATOR = 0, 1, 2, 3, 4
CAPABILITY_NAMES = (*ENDPOINT_NAMES, *BACKENDS)


def parse_duration(text: str) -> int:
    """'90', '90s', '2m', '1h30m' -> seconds (argparse type)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 45s, 2m, 1h30m)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return total


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="run_load_tests.py",
        description="Load-test a real-time voice AI agent (telephony/browser audio over WebSocket) and check its SLOs.",
        epilog="Suites: " + "; ".join(f"{s.name}: {s.description}" for s in SUITES.values())
        + ". Environment: API_BASE_URL, WS_BASE_URL, REDIS_URL, OPENAI_*, SPEECH_*, COSMOS_*, TEST_DURATION, MAX_USERS."
        " Exit codes: 0 pass, 1 fail, 2 bad input, 3 target unreachable or lacking what the run needs, 4 generator "
        "overloaded.",
    )
    parser.add_argument("--test-suite", choices=sorted(SUITES), default="quick", help="which suite to run (default: quick)")
    parser.add_argument("--host", help="base URL of the deployed system under test, e.g. https://agent.example.com "
                        "(default: API_BASE_URL, else start the built-in local stack)")
    parser.add_argument("--profile", choices=None, help=f"target profile: {', '.join(BUILTIN_PROFILES)} or one defined in --config "
                        "(default: artagent-v1)")
    parser.add_argument("-u", "--users", type=positive_int, help="total concurrent users (default: the suite's), split between API "
                        "users and callers in the suite's proportion")
    parser.add_argument("-r", "--spawn-rate", type=positive_float, help="users started per second (default: the suite's)")
    parser.add_argument("-t", "--run-time", type=parse_duration, help="how long each group runs, e.g. 45s, 2m (default: "
                        "the suite's per-group durations, or TEST_DURATION seconds)")
    parser.add_argument("--group", choices=GROUP_NAMES, help="run one group alone: api (REST endpoints), websocket "
                        "(phone and browser callers, relay listeners), backend (Redis, LLM, Speech, Cosmos users) or "
                        "integration (whole medical consultations) (default: every group of the suite)")
    parser.add_argument("--api-users", type=non_negative_int, help="API users (default: the suite's, or from -u)")
    parser.add_argument("--websocket-users", type=non_negative_int, help="phone callers (default: the suite's, or from -u)")
    parser.add_argument("--integration-users", type=non_negative_int, help="consultation callers, each running whole "
                        "medical scenarios (default: the suite's; 0 leaves the group out)")
    parser.add_argument("--parallel", action="store_true", help="run the groups at once (each in its own Locust "
                        "process) instead of one after another; the report merges them either way")
    parser.add_argument("--workers", "--processes", dest="processes", type=positive_int, metavar="N",
                        help="generator processes on this machine per group (a Locust master + N forked workers; samples "
                        "are merged exactly; a worker lost mid-run is named in the report). Use when the report says the "
                        "generator was overloaded")
    parser.add_argument("--expect-workers", type=positive_int, metavar="N", help="drive N workers on other machines: "
                        "each group's Locust master waits (up to 2 min) for N workers, which join with "
                        "`python run_load_tests.py worker --master-host THIS_HOST` (or `locust -f locustfile.py --worker`)")
    parser.add_argument("--master-bind-host", default="127.0.0.1", help="address the master listens on for workers "
                        "(default 127.0.0.1; give this machine's private address for remote workers)")
    parser.add_argument("--master-bind-port", type=positive_int, default=5557, help="port for workers: the run's first "
                        "group listens on it, the next on the port after, and so on (default 5557)")
    parser.add_argument("--backend-users", type=int, default=None, help="how many of each backend user (Redis, LLM, "
                        "Speech, Cosmos) the backend group runs (default: the suite's; 0 leaves the group out)")
    parser.add_argument("--turns-per-call", type=positive_int, help="caller utterances per phone call (default: the suite's)")
    parser.add_argument("--barge-in-rate", type=float, help="share of later caller turns that interrupt the agent "
                        "while it speaks, 0-1 (default: 0.25)")
    parser.add_argument("--find-capacity", action="store_true", help="step phone calls up (--capacity-start, "
                        "--capacity-step, --capacity-max, --capacity-step-duration) until an SLO or the 80%% success "
                        "floor breaks; reports the largest level that held and which metric broke first")
    parser.add_argument("--capacity-full", action="store_true", help="with --find-capacity: run every step up to "
                        "--capacity-max even after one broke (default: stop at the first step that breaks)")
    parser.add_argument("--capacity-start", type=positive_int, default=5, help="calls in the first step (default 5)")
    parser.add_argument("--capacity-step", type=positive_int, default=5, help="calls added per step (default 5)")
    parser.add_argument("--capacity-max", type=positive_int, default=100, help="calls in the last step (default 100)")
    parser.add_argument("--capacity-step-duration", type=positive_float, default=30.0, help="seconds per step "
                        "(default 30; long enough for several turns per call)")
    parser.add_argument("--env", choices=ENVIRONMENTS, help="load .env.<name> (the framework's DB pool settings "
                        "DB_POOL_SIZE / DB_MAX_OVERFLOW / DB_POOL_TIMEOUT / DB_POOL_RECYCLE: 10/10/30/1800, 40/20/30/1800, "
                        "50/25/30/1800) into the environment; the local stack's target sizes its session pool by it")
    parser.add_argument("--results-dir", type=Path, help="where run folders go (default: results)")
    parser.add_argument("--config", type=Path, help="YAML file: settings, SLO targets, thresholds, extra profiles")
    parser.add_argument("--monitor-interval", type=positive_float, default=1.0, help="seconds between resource samples "
                        "of the target's and the generator's processes (CPU, memory, threads, open files; default 1)")
    parser.add_argument("--monitor-pid", type=positive_int, action="append", default=[], metavar="PID",
                        help="also watch this process of the system under test (repeatable; the local stack's are "
                        "always watched)")
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON report to this file (results/<run-id>/report.json "
                        "and results/load_test_report_<YYYYMMDD_HHMMSS>.json are always written)")
    parser.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two runs instead of running "
                        "(run folders, report.json files or run ids under --results-dir): prints the change of every "
                        "metric, writes compare.json (or --output), exits 1 when an SLO that held in RUN_A misses in RUN_B")
    parser.add_argument("--require", metavar="NAME[,NAME...]", help="capabilities the target must have, or the run "
                        "stops at preflight with exit 3: endpoints of the profile (" + ", ".join(ENDPOINT_NAMES) + ") "
                        "or backend services (" + ", ".join(BACKENDS) + "). Without it, users whose endpoint the target "
                        "lacks or whose service is not configured are left out, each with one line, and the run is "
                        "judged on what the agent has")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a warn verdict too (default: warn exits 0)")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (https/wss); the report says so")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration (secrets redacted) and exit")
    parser.add_argument("--web", action="store_true", help="serve Locust's web UI (with the Voice SLOs tab) instead of a "
                        "headless run; starts the local stack when no --host; Ctrl-C stops")
    parser.add_argument("--web-port", type=positive_int, default=8089, help="port of the web UI (default 8089)")
    parser.add_argument("--web-host", default="127.0.0.1", help="address the web UI binds (default 127.0.0.1; any other "
                        "needs --web-login)")
    parser.add_argument("--web-login", action="store_true", help="require a login to the web UI (user VOICELOAD_WEB_USER, "
                        "default voiceload; password VOICELOAD_WEB_PASSWORD)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Locust's and the local stack's output as it runs")
    parser.add_argument("--progress-every", type=positive_float, default=10.0, metavar="S", help="print a progress line "
                        "per running group every S seconds: users, requests, failures, requests/s (default 10)")
    add_test_type_options(parser)
    return parser


def fail_input(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


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


def ensure_writable(directory: Path) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"results dir {directory} is not writable: {exc.strerror or exc}"
    return None


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
    command = locust_command(group_dir, host, plan.users if timed else None, settings.spawn_rate,
                             plan.run_time_s if timed else None, {
        "target_profile": settings.profile, "suite": None if args.test_type or args.find_capacity else suite.name, **plan.counts, **plan.shape,
        "turns_per_call": settings.turns_per_call, "barge_in_rate": args.barge_in_rate,
        "voiceload_config": args.config, "call_log": run_dir / "calls.jsonl", "samples_file": group_dir / SAMPLES_FILE,
        "processes": processes, "master_bind_port": port, "master_port": port, **remote, **caller_options(args),
        "absent_endpoints": ",".join(absent), "stop_at_broken_phase": args.find_capacity and not args.capacity_full,
    }, plan.user_classes, STOP_TIMEOUT_S.get(plan.name, DEFAULT_STOP_TIMEOUT_S))
    return LocustJob(plan.name, command, group_dir, plan.run_time_s)


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


def seed_report_paths(results_dir: Path, started: dt.datetime) -> list[Path]:
    """The file names the original stress framework used, kept for the scripts that read them."""
    return [results_dir / f"load_test_report_{started:%Y%m%d_%H%M%S}.json", results_dir / "load_test_report_latest.json"]


def write_json_copy(report: dict, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    except OSError as exc:
        print(f"warning: could not write {path}: {exc.strerror or exc}", file=sys.stderr)


def load_run_report(spec: str, results_dir: Path) -> dict:
    """A report from a run folder, a report.json path or a run id under results_dir; ValueError if none."""
    for candidate in (Path(spec), Path(spec) / "report.json", results_dir / spec / "report.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except ValueError:
                raise ValueError(f"{candidate} is not a JSON report") from None
    raise ValueError(f"no report found for {spec!r} (give a run folder, a report.json or a run id in {results_dir})")


def compare_runs(specs: list[str], results_dir: Path, output: Path | None) -> int:
    from reporting.compare import compare_reports, comparison_text

    try:
        before, after = (load_run_report(spec, results_dir) for spec in specs)
    except ValueError as exc:
        return fail_input(str(exc))
    comparison = compare_reports(before, after)
    print(comparison_text(comparison), end="")
    path = output or results_dir / "compare.json"
    write_json_copy(comparison, path)
    print(f"comparison: {path}")
    return EXIT_FAIL if comparison["regressions"] else EXIT_PASS


def _interrupt_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # handled like Ctrl-C: stop Locust gracefully and write the partial report


def exit_code_for(report: dict, strict: bool) -> int:
    summary = report.get("summary", {})
    verdict = summary.get("verdict")
    if verdict == "fail" or (verdict == "warn" and strict):
        return EXIT_FAIL
    if not summary.get("generator_healthy", True):
        return EXIT_GENERATOR
    return EXIT_PASS


def shape_plan(shape: dict[str, object]) -> GroupPlan:
    """Phone callers under a load shape (a test type, the capacity finder): the shape sets users and time."""
    built = shape_from_options(default_shape_options(**shape))
    return GroupPlan("websocket", {}, int(round(built.duration_s)), shape=shape, user_classes=("TelephonyCaller",),
                     shape_peak_users=built.peak_users)


def plan_run(args: argparse.Namespace, settings: Settings, suite: Suite) -> list[GroupPlan] | str:
    """The groups this run is made of (none for http_basic), or one line about bad input."""
    if args.find_capacity:
        if args.test_type:
            return "--find-capacity and --test-type are two kinds of run: choose one"
        if args.capacity_start > args.capacity_max:
            return f"--capacity-start ({args.capacity_start}) must not exceed --capacity-max ({args.capacity_max})"
        shape = {"shape": "ramp", "ramp_start_users": args.capacity_start, "ramp_increment": args.capacity_step,
                 "ramp_max_users": args.capacity_max, "ramp_step_duration": args.capacity_step_duration}
        return [shape_plan(shape)]
    if args.test_type:
        if problem := validate_test_type(args):
            return problem
        if args.test_type == "http_basic":
            return []
        try:
            return [shape_plan(shape_options(args))]
        except ShapeError as exc:
            return str(exc)
    run_time = run_time_override(settings)
    if args.backend_users is None:
        args.backend_users = suite.backend_users
    if args.backend_users < 0:
        return "--backend-users must be 0 or more"
    counts = suite.split(settings.users)
    counts.update({kind: args.backend_users for kind in BACKEND_KINDS})
    for kind, given in (("api_users", args.api_users), ("voice_users", args.websocket_users)):
        if given is not None:
            counts[kind] = given
    counts[INTEGRATION_KIND] = suite.integration_users if args.integration_users is None else args.integration_users
    plans = plan_groups(suite, counts, args.group, run_time)
    if not plans:
        return f"group {args.group} has no users in this run (see -u and --backend-users)"
    for plan in plans:
        if plan.users > settings.max_users:
            return f"{plan.users} users in group {plan.name} exceed MAX_USERS={settings.max_users}"
    return plans


def fit_plans(plans: list[GroupPlan], capabilities: list[Capability], profile: str) -> tuple[list[GroupPlan], list[str], str | None]:
    """The groups with every user kind the target cannot serve left out (orchestrator.capabilities.fit_counts),
    one line per kind left out, and the reason the run cannot go on at all (callers planned but no phone line
    and no browser socket; a shape of phone callers without a phone line; nothing left to run), or None."""
    fitted, lines = [], []
    callers = any(plan.shape or any(plan.counts.get(kind) for kind in CALLER_KINDS) for plan in plans)
    if callers and (why := no_call_channel(capabilities)):
        return [], lines, f"no caller can reach the agent with profile {profile} (check --profile and --host): {why}"
    for plan in plans:
        if plan.shape:  # the test types and the capacity finder: phone callers under a load shape
            if short := lacking(capabilities, KIND_NEEDS["voice_users"]):
                return [], lines, f"{plan.describe()} needs a phone line: {because(short)}"
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


def printable_config(settings: Settings, plans: list[GroupPlan], args: argparse.Namespace) -> dict:
    """--print-config: the resolved settings (secrets redacted) and the groups that would run, with the
    values really used (suite defaults < YAML < environment < command line), before preflight."""
    return {**settings.redacted(), "run_plan": {
        "groups": [{"name": p.name, "users": {k: v for k, v in p.counts.items() if v} or p.users, "run_time_s": p.run_time_s,
                    **({"shape": p.shape} if p.shape else {})} for p in plans],
        "parallel": args.parallel, "spawn_rate": settings.spawn_rate, "turns_per_call": settings.turns_per_call,
        "note": "preflight may leave out users whose endpoints the target lacks or whose services are not configured"}}


def fetch_target_counters(host: str, settings: Settings) -> dict[str, int] | None:
    """The reference target's own counters from its health endpoint (None if it does not answer)."""
    try:
        response = httpx.get(host + settings.target_profile.health.path, timeout=5.0, verify=not settings.insecure)
        return dict(response.json().get("counters", {}))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def run_groups(plans: list[GroupPlan], run_dir: Path, host: str, args: argparse.Namespace, settings: Settings,
               suite: Suite, env: dict[str, str], absent: list[str]) -> list[GroupOutcome]:
    """Each group's Locust, one after another or all at once; stops early on Ctrl-C / SIGTERM."""
    plan_of = {plan.name: plan for plan in plans}
    jobs = [group_job(index, plan, run_dir, host, args, settings, suite, absent) for index, plan in enumerate(plans)]
    outcomes: list[GroupOutcome] = []
    for batch in [jobs] if args.parallel else [[job] for job in jobs]:
        for job in batch:
            print(f"voiceload: group {plan_of[job.name].describe()}", flush=True)
        runs = run_locusts(batch, env, verbose=args.verbose, progress_every_s=args.progress_every)
        outcomes += [GroupOutcome(job.name, r.exit_code, r.interrupted, job.total_s, plan_of[job.name].users)
                     for job, r in zip(batch, runs)]
        if any(r.interrupted for r in runs):
            break  # the groups not yet started are left out
    return outcomes


def main(argv: list[str] | None = None) -> int:
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
        if args.env:
            try:
                os.environ.update(read_env_file(args.env))
            except ValueError as exc:
                return fail_input(str(exc))
        from orchestrator.web_mode import run_web

        return run_web(args, settings)
    if args.expect_workers and (args.processes or args.parallel):
        return fail_input("--expect-workers drives remote workers one group at a time: leave out --workers/--parallel "
                          "(start more worker processes on the remote machines instead)")
    plans = plan_run(args, settings, suite)
    if isinstance(plans, str):
        return fail_input(plans)
    required = [name.strip() for name in (args.require or "").split(",") if name.strip()]
    if unknown := [name for name in required if name not in CAPABILITY_NAMES]:
        return fail_input(f"--require {unknown[0]}: no such capability (known: {', '.join(CAPABILITY_NAMES)})")
    if args.print_config:
        print(json.dumps(printable_config(settings, plans, args), indent=2))
        return EXIT_PASS
    if args.env:
        try:
            os.environ.update(read_env_file(args.env))
        except ValueError as exc:
            return fail_input(str(exc))
    if missing := [pid for pid in args.monitor_pid if not psutil.pid_exists(pid)]:
        return fail_input(f"--monitor-pid {missing[0]}: no such process")
    results_dir = Path(settings.results_dir).resolve()
    if problem := ensure_writable(results_dir):
        return fail_input(problem)
    started = dt.datetime.now()
    label = args.test_type or ("capacity" if args.find_capacity else suite.name + (f"-{args.group}" if args.group else ""))
    run_id = f"{started:%Y%m%d-%H%M%S}-{label}"
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    uses_cosmos = any(plan.counts.get("cosmos_users") for plan in plans)

    stack = None
    host = settings.api_base_url
    env = locust_env(argv, settings, None)
    target_counters: dict[str, int] | None = None
    outcomes: list[GroupOutcome] = []
    capabilities: list[Capability] = []
    not_run: list[str] = []
    http_basic = None
    try:
        if host is None:
            try:
                stack = start_local_stack(run_dir / "logs", with_cosmos=uses_cosmos)
            except StackError as exc:
                return fail_input(f"local stack could not start: {exc}")
            host = stack.base_url
        if reason := check_reachable(host, settings.target_profile.health.path, verify=not settings.insecure):
            print(f"error: target {redact_url(host)} unreachable at preflight: {reason}", file=sys.stderr)
            return EXIT_UNREACHABLE
        env = locust_env(argv, settings, stack)
        capabilities = probe_target(host, settings) + backend_capabilities(settings_seen_by_locust(env, args))
        if short := missing_required(capabilities, required):
            print(f"error: the target lacks what --require asks for: {because(short)}", file=sys.stderr)
            return EXIT_UNREACHABLE
        plans, not_run, problem = fit_plans(plans, capabilities, settings.profile)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_UNREACHABLE
        for line in not_run:
            print(f"voiceload: {line}", flush=True)
        print(f"voiceload: {label} · profile {settings.profile} · "
              + (f"{'in parallel' if args.parallel else 'one group after another'}, {wall_time_s(plans, args.parallel)}s of load"
                 if plans else "10 requests") + f" · results in {run_dir}", flush=True)
        watched = {**(stack.pids() if stack is not None else {}), **{f"pid {pid}": pid for pid in args.monitor_pid}}
        with ResourceMonitor(watched, args.monitor_interval) as monitor:
            if args.test_type == "http_basic":
                http_basic = MetricsRecorder()
                http_basic_fields = check_http_basic(host, settings, http_basic)
            else:
                outcomes = run_groups(plans, run_dir, host, args, settings, suite, env, absent_endpoints(capabilities))
        if stack is not None:
            target_counters = fetch_target_counters(host, settings)
    finally:
        if stack is not None:
            stack.stop()

    run = {"id": run_id, "suite": None if args.test_type or args.find_capacity else suite.name, "test_type": args.test_type,
           "host": redact_url(host or ""), "profile": settings.profile,
           "shape": plans[0].shape.get("shape") if plans and plans[0].shape else None,
           "parallel": args.parallel, "command": env["VOICELOAD_COMMAND"]}
    if http_basic is not None:
        ended = dt.datetime.now(dt.timezone.utc)
        run.update({"started_at": started.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
                    "ended_at": ended.isoformat(timespec="seconds"), "duration_s": round((ended - started.astimezone(dt.timezone.utc)).total_seconds(), 1),
                    "workers": 0, "users": 1, "interrupted": False})
        report = build_report(http_basic, settings, run)
    else:
        join_group_files(run_dir, [o.name for o in outcomes])
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        report = merge_groups(run_dir, outcomes, settings,
                              {**run, "started_at": started.astimezone(dt.timezone.utc).isoformat(timespec="seconds"), "ended_at": now})
    report["resources"] = monitor.summary()
    if target_counters is not None:  # the local target's session pool (the framework's DB pool)
        pool = {key: os.environ.get(key, default) for key, default in zip(POOL_KEYS, ("10", "10", "30", "1800"))}
        report["resources"]["db_pool"], findings = pool_findings(target_counters, pool)
        report["resources"]["bottlenecks"] += findings
    report["run"]["env"] = args.env
    report["capabilities"] = [c.as_dict() for c in capabilities]
    report["summary"]["messages"] += not_run
    report["summary"]["messages"] += [f"bottleneck: {line}" for line in report["resources"]["bottlenecks"]]
    for plan in plans[len(outcomes):] if http_basic is None else ():
        report["run"]["interrupted"] = True
        report["summary"]["messages"].append(f"group {plan.name} did not run: the run was interrupted")
    if args.test_type:
        report["test"] = test_result_fields(args.test_type, report, args)
        if http_basic is not None:
            report["test"].update(http_basic_fields)
    if args.find_capacity:
        report["capacity"] = find_capacity(report["phases"])
        report["capacity"]["stopped_at_knee"] = report["capacity"]["knee"] is not None and not args.capacity_full
        report["summary"]["messages"].append(capacity_line(report["capacity"]) + (
            "; the run stopped there (--capacity-full runs every step)" if report["capacity"]["stopped_at_knee"] else ""))
    write_run_outputs(report, run_dir)
    report_path = run_dir / "report.json"
    for copy in seed_report_paths(results_dir, started) + ([args.output] if args.output else []):
        write_json_copy(report, copy)

    render_summary(report)
    if args.test_type:
        print(test_summary_line(report["test"]))
    print(f"report: {report_path}  ·  {run_dir / 'report.html'}  ·  {run_dir / 'junit.xml'}")
    return exit_code_for(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
