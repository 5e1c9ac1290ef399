"""Run voiceload's backend users in-process under Locust (Environment + LocalRunner) and print the result.

    python tests/inprocess_locust.py --host http://127.0.0.1:8000 --classes RedisUser,LLMUser --users 4 --seconds 8

Its own process, with Locust imported first: Locust monkey-patches with gevent on import, which must happen
before anything imports ssl (inside pytest it would not). The exact-sample recorder is installed as
locustfile.py does for a local runner; settings come from the environment (REDIS_URL, OPENAI_ENDPOINT,
SPEECH_HOST, COSMOS_ENDPOINT/COSMOS_KEY, ...). After --seconds the runner quits (users get --stop-timeout
to finish their task), and ONE JSON object goes to stdout:
{"locust_stats": {"<type> <name>": {"num_requests", "num_failures", "median"}}, "metrics": {...},
 "errors": [...], "counters": {...}, "summary": {...}, "slo": [...], "stopped_in_time": bool}.
With --report-dir the run's report files (report.json, report.html, junit.xml) are written there too.
Exit code 0, or 1 when the runner did not stop within its budget.
"""

from __future__ import annotations

import locust  # noqa: I001  first: gevent's monkey-patching before anything imports ssl

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import gevent
from locust.env import Environment

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from config import load_settings, redact_url  # noqa: E402
from locust_adapters import plugin  # noqa: E402
from locust_adapters.run_clock import RunClock  # noqa: E402
from locust_adapters.run_section import locust_errors  # noqa: E402
from reporting.report import build_report  # noqa: E402
from reporting.writer import write_run_outputs  # noqa: E402
from users.run_context import RECORDER, attach  # noqa: E402
from users.runtime import get_settings, set_settings  # noqa: E402

USER_MODULES = {"RedisUser": "users.backend_redis", "LLMUser": "users.backend_llm",
                "SpeechUser": "users.backend_speech", "CosmosUser": "users.backend_cosmos"}
QUIT_MARGIN_S = 5.0  # beyond --seconds + --stop-timeout, for stopping and killing the runner's greenlets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--classes", required=True, help=f"comma-separated, of {', '.join(USER_MODULES)}")
    parser.add_argument("--users", type=int, required=True, help="total users, spread over the classes by weight")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--stop-timeout", type=float, default=5.0, help="seconds users get to finish their task")
    parser.add_argument("--report-dir", type=Path, default=None)
    return parser.parse_args(argv)


def user_classes(names: str) -> list[type[locust.User]]:
    """The named user classes; only their modules (and SDKs) are imported."""
    return [getattr(importlib.import_module(USER_MODULES[name]), name) for name in names.split(",")]


def run(args: argparse.Namespace) -> tuple[dict, bool]:
    """Run the users for args.seconds; (result, whether the runner stopped within its budget)."""
    set_settings(load_settings({"api_base_url": args.host}))
    environment = Environment(user_classes=user_classes(args.classes), events=locust.events, host=args.host,
                              stop_timeout=args.stop_timeout)
    runner = environment.create_local_runner()
    result: dict = {}

    def on_quit(env: Environment, clock: RunClock) -> None:
        duration = (clock.ended_at - clock.started_at).total_seconds() if clock.started_at and clock.ended_at else 0.0
        run_info = {"id": "inprocess", "duration_s": round(duration, 1), "host": redact_url(args.host),
                    "profile": get_settings().profile, "users": args.users, "locust_version": locust.__version__}
        exceptions = locust_errors(runner)
        report = build_report(RECORDER, get_settings(), run_info, clock.timeline, exceptions)
        if args.report_dir is not None:
            write_run_outputs(report, args.report_dir)
        result.update(
            locust_stats={f"{e.method} {e.name}": {"num_requests": e.num_requests, "num_failures": e.num_failures,
                                                   "median": e.median_response_time}
                          for e in environment.stats.entries.values()},
            metrics=report["metrics"], errors=report["errors"], counters=dict(RECORDER.counters),
            summary=report["summary"], slo=report["slo"])

    attach(environment)  # the run context, with the settings set above
    plugin.install(environment, on_quit)
    gevent.get_hub().loop.update_now()  # importing the SDKs left gevent's cached clock seconds behind
    runner.start(args.users, spawn_rate=args.users)
    gevent.spawn_later(args.seconds, runner.quit)
    stopped = runner.greenlet.join(timeout=args.seconds + args.stop_timeout + QUIT_MARGIN_S)
    if not stopped:
        runner.greenlet.kill(block=True, timeout=QUIT_MARGIN_S)
    environment.events.quit.fire(exit_code=0)  # as Locust does at exit: the recorder plugin builds the report
    return result, bool(stopped)


def main() -> None:
    result, stopped = run(parse_args())
    print(json.dumps({**result, "stopped_in_time": stopped}))
    sys.stdout.flush()
    sys.stderr.flush()
    # The Speech SDK's native threads can hold a normal interpreter exit; this process is done.
    os._exit(0 if stopped else 1)


if __name__ == "__main__":
    main()
