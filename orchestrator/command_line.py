"""run_load_tests.py's command line: every option with its help, and one-line errors for bad input."""

from __future__ import annotations

import argparse
from pathlib import Path

from config import ENDPOINT_NAMES
from orchestrator.arg_types import parse_duration, positive_float, positive_int
from orchestrator.capabilities import BACKENDS
from orchestrator.db_pool import ENVIRONMENTS
from orchestrator.groups import GROUP_NAMES
from orchestrator.one_line_errors import OneLineErrors
from orchestrator.shared_options import add_to_cli
from orchestrator.suites import SUITES
from orchestrator.test_types import add_test_type_options

CAPABILITY_NAMES = (*ENDPOINT_NAMES, *BACKENDS)


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
    parser.add_argument("-u", "--users", type=positive_int, help="total concurrent users (default: the suite's), split between API "
                        "users and callers in the suite's proportion")
    parser.add_argument("-r", "--spawn-rate", type=positive_float, help="users started per second (default: the suite's)")
    parser.add_argument("-t", "--run-time", type=parse_duration, help="how long each group runs, e.g. 45s, 2m (default: "
                        "the suite's per-group durations, or TEST_DURATION seconds)")
    add_to_cli(parser)  # --profile, --config, the user counts, turns per call, barge-in rate (shared with Locust)
    parser.add_argument("--group", choices=GROUP_NAMES, help="run one group alone: api (REST endpoints), websocket "
                        "(phone and browser callers, relay listeners), backend (Redis, LLM, Speech, Cosmos users) or "
                        "integration (whole medical consultations) (default: every group of the suite)")
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
