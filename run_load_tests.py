#!/usr/bin/env python3
"""Run a voiceload suite headless and gate on its SLOs.

With no --host it starts the built-in local stack (a real redis-server and the reference voice
agent in target/) and tests that. Results go to results/<run-id>/ (report.json, report.html,
junit.xml, Locust's CSVs, logs); results/latest points at the newest run.

Exit codes: 0 pass (or warn without --strict) · 1 fail (or warn with --strict) · 2 bad input or
configuration · 3 target unreachable at preflight · 4 generator overloaded, figures not trustworthy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import sys
from pathlib import Path

from config import BUILTIN_PROFILES, ConfigError, Settings, load_settings, redact_url
from orchestrator.local_stack import LocalStack, StackError
from orchestrator.locust_run import locust_command, run_locust
from orchestrator.preflight import check_reachable
from orchestrator.suites import SUITES, Suite

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_GENERATOR = 0, 1, 2, 3, 4


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


def _positive(convert, noun: str):
    """An argparse type: `convert` the text, and require a value above 0."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


positive_int = _positive(int, "a whole number")
positive_float = _positive(float, "a number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_load_tests.py",
        description="Load-test a real-time voice AI agent (telephony/browser audio over WebSocket) and check its SLOs.",
        epilog="Suites: " + "; ".join(f"{s.name}: {s.description}" for s in SUITES.values())
        + ". Environment: API_BASE_URL, WS_BASE_URL, REDIS_URL, OPENAI_*, SPEECH_*, COSMOS_*, TEST_DURATION, MAX_USERS."
        " Exit codes: 0 pass, 1 fail, 2 bad input, 3 target unreachable, 4 generator overloaded.",
    )
    parser.add_argument("--test-suite", choices=sorted(SUITES), default="quick", help="which suite to run (default: quick)")
    parser.add_argument("--host", help="base URL of the deployed system under test, e.g. https://agent.example.com "
                        "(default: API_BASE_URL, else start the built-in local stack)")
    parser.add_argument("--profile", choices=None, help=f"target profile: {', '.join(BUILTIN_PROFILES)} or one defined in --config "
                        "(default: artagent-v1)")
    parser.add_argument("-u", "--users", type=positive_int, help="total concurrent users (default: the suite's), split between API "
                        "users and callers in the suite's proportion")
    parser.add_argument("-r", "--spawn-rate", type=positive_float, help="users started per second (default: the suite's)")
    parser.add_argument("-t", "--run-time", type=parse_duration, help="how long to run, e.g. 45s, 2m (default: the suite's, "
                        "or TEST_DURATION seconds)")
    parser.add_argument("--processes", type=positive_int, help="generator processes on this machine (Locust master + N "
                        "forked workers; samples are merged exactly). Use when the report says the generator was overloaded")
    parser.add_argument("--backend-users", type=int, default=None, help="how many of each backend user (Redis, LLM, "
                        "Speech, Cosmos) run beside the callers (default: none). They share the callers' process and can "
                        "delay their audio (watch generator health); use --processes, or run them alone")
    parser.add_argument("--turns-per-call", type=positive_int, help="caller utterances per phone call (default: the suite's)")
    parser.add_argument("--barge-in-rate", type=float, help="share of later caller turns that interrupt the agent "
                        "while it speaks, 0-1 (default: 0.25)")
    parser.add_argument("--results-dir", type=Path, help="where run folders go (default: results)")
    parser.add_argument("--config", type=Path, help="YAML file: settings, SLO targets, thresholds, extra profiles")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a warn verdict too (default: warn exits 0)")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (https/wss); the report says so")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration (secrets redacted) and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Locust's and the local stack's output as it runs")
    return parser


def fail_input(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def resolve_settings(args: argparse.Namespace, suite: Suite) -> Settings:
    overrides = {"api_base_url": args.host, "profile": args.profile, "results_dir": args.results_dir,
                 "turns_per_call": args.turns_per_call or suite.turns_per_call, "insecure": args.insecure or None,
                 "barge_in_rate": args.barge_in_rate,
                 "users": args.users}
    return load_settings(overrides, config_file=args.config)


def ensure_writable(directory: Path) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"results dir {directory} is not writable: {exc.strerror or exc}"
    return None


def exit_code_for(report: dict, strict: bool) -> int:
    summary = report.get("summary", {})
    verdict = summary.get("verdict")
    if verdict == "fail" or (verdict == "warn" and strict):
        return EXIT_FAIL
    if not summary.get("generator_healthy", True):
        return EXIT_GENERATOR
    return EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    suite = SUITES[args.test_suite]
    try:
        settings = resolve_settings(args, suite)
    except ConfigError as exc:
        return fail_input(str(exc))
    if args.print_config:
        print(json.dumps(settings.redacted(), indent=2))
        return EXIT_PASS
    run_time = args.run_time or (settings.test_duration if os.environ.get("TEST_DURATION") else suite.duration_s)
    if args.backend_users is None:
        args.backend_users = suite.backend_users
    if args.backend_users < 0:
        return fail_input("--backend-users must be 0 or more")
    counts = suite.split(args.users)
    profile = settings.target_profile
    for kind, endpoint in (("browser_users", profile.browser_ws), ("relay_users", profile.relay_ws)):
        if endpoint is None and counts[kind]:  # this kind of agent has no such socket: call it by phone instead
            counts["voice_users"] += counts[kind]
            counts[kind] = 0
    counts.update({kind: args.backend_users for kind in ("redis_users", "llm_users", "speech_users", "cosmos_users")})
    total_users = sum(counts.values())
    if total_users > settings.max_users:
        return fail_input(f"{total_users} users exceed MAX_USERS={settings.max_users}")
    results_dir = Path(settings.results_dir).resolve()
    if problem := ensure_writable(results_dir):
        return fail_input(problem)
    started = dt.datetime.now()
    run_id = f"{started:%Y%m%d-%H%M%S}-{suite.name}"
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)

    stack = None
    host = settings.api_base_url
    try:
        if host is None:
            print("voiceload: starting the local stack (redis-server + reference voice agent) …", flush=True)
            stack = LocalStack(run_dir / "logs", with_cosmos=args.backend_users > 0)
            try:
                stack.start()
            except StackError as exc:
                return fail_input(f"local stack could not start: {exc}")
            host = stack.base_url
            print(f"voiceload: local target at {host}, Redis at {stack.redis_url}", flush=True)
            for note in stack.skipped:
                print(f"voiceload: skipped {note}", flush=True)
        health_path = settings.target_profile.health.path
        if reason := check_reachable(host, health_path, verify=not settings.insecure):
            print(f"error: target {redact_url(host)} unreachable at preflight: {reason}", file=sys.stderr)
            return EXIT_UNREACHABLE
        print(f"voiceload: {suite.name} suite · profile {settings.profile} · {counts['api_users']} API users, "
              f"{counts['voice_users']} phone + {counts['browser_users']} browser callers, {counts['relay_users']} relay listeners"
              + (f", {args.backend_users} of each backend user" if args.backend_users else "")
              + f" · {run_time}s · results in {run_dir}", flush=True)
        command = locust_command(run_dir, host, total_users, args.spawn_rate or suite.spawn_rate, run_time, {
            "target_profile": settings.profile, "suite": suite.name, **counts,
            "turns_per_call": settings.turns_per_call, "barge_in_rate": args.barge_in_rate,
            "voiceload_config": args.config, "call_log": run_dir / "calls.jsonl",
            "processes": args.processes if args.processes and args.processes > 1 else None,
        })
        env = dict(os.environ, VOICELOAD_COMMAND=shlex.join(["run_load_tests.py", *(argv if argv is not None else sys.argv[1:])]),
                   PYTHONUNBUFFERED="1")
        if settings.insecure:
            env["VOICELOAD_INSECURE"] = "1"
        if stack is not None:  # backend users load the local stack's services unless told otherwise
            if not settings.redis_url:
                env["REDIS_URL"] = stack.redis_url
            if not settings.speech_host and not settings.speech_key:
                env["SPEECH_HOST"] = stack.base_url.replace("http://", "ws://")
            if stack.cosmos is not None and not settings.cosmos_endpoint:
                env["COSMOS_ENDPOINT"], env["COSMOS_KEY"] = stack.cosmos.endpoint, stack.cosmos.key
        outcome = run_locust(command, run_dir, run_time, env, verbose=args.verbose)
    finally:
        if stack is not None:
            stack.stop()

    report_path = run_dir / "report.json"
    if not report_path.exists():
        print(f"error: Locust exited with code {outcome.exit_code} and wrote no report; see {outcome.log_path}", file=sys.stderr)
        return EXIT_FAIL
    report = json.loads(report_path.read_text())
    if outcome.interrupted and not report["run"].get("interrupted"):
        from reporting.writer import write_run_outputs

        report["run"]["interrupted"] = True
        report["summary"]["messages"].append("run was interrupted: figures cover only the part that ran")
        write_run_outputs(report, run_dir)

    from reporting.console import render_summary

    render_summary(report)
    print(f"report: {report_path}  ·  {run_dir / 'report.html'}  ·  {run_dir / 'junit.xml'}")
    return exit_code_for(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
