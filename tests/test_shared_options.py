"""The options run_load_tests.py and the locustfile share are declared once (orchestrator/shared_options.py):
both command lines take them, run_load_tests.py hands their values on under each option's Locust flag, and
the locustfile's user counts are the shared ones."""

from __future__ import annotations

import json
import subprocess
import sys

from orchestrator.groups import COUNT_KEY_OF_CLASS
from orchestrator.shared_options import SHARED_OPTIONS, USER_COUNT_DESTS
from run_load_tests import build_parser
from tests.conftest import REPO_ROOT, run_cli


def test_each_shared_option_is_handed_to_locust_under_its_own_flag():
    # locust_command turns an option's name into `--name-with-dashes`: that must be the Locust flag
    assert all(option.locust_flag == "--" + option.dest.replace("_", "-") for option in SHARED_OPTIONS)
    assert set(USER_COUNT_DESTS) == set(COUNT_KEY_OF_CLASS.values())


def test_run_load_tests_takes_every_shared_option_with_its_type():
    parser = build_parser()
    args = parser.parse_args(["--profile", "twilio-media", "--turns-per-call", "3", "--barge-in-rate", "0.5",
                              "--websocket-users", "4", "--browser-users", "2", "--relay-users", "0"])
    assert (args.profile, args.turns_per_call, args.barge_in_rate) == ("twilio-media", 3, 0.5)
    assert (args.voice_users, args.browser_users, args.relay_users) == (4, 2, 0)
    assert parser.parse_args(["--voice-users", "5"]).voice_users == 5  # the Locust name works here too


def test_the_locustfile_counts_users_by_the_shared_options():
    probe = ("import locustfile; print(__import__('json').dumps({k: v.__name__ for k, v in locustfile.USER_COUNT_OPTIONS.items()}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {kind: name for name, kind in COUNT_KEY_OF_CLASS.items()}


def test_browser_and_relay_counts_from_the_command_line_shape_the_suite():
    result = run_cli(["--browser-users", "2", "--relay-users", "0", "--websocket-users", "1", "--print-config"], timeout=60)
    assert result.returncode == 0, result.stderr
    websocket = next(g for g in json.loads(result.stdout)["run_plan"]["groups"] if g["name"] == "websocket")
    assert websocket["users"] == {"voice_users": 1, "browser_users": 2}


def test_a_shared_option_out_of_range_is_one_line_on_both_command_lines(tmp_path):
    result = run_cli(["--barge-in-rate", "5", "--print-config"], timeout=60)
    assert result.returncode == 2 and "must be within 0..1" in result.stderr
    locust = subprocess.run([sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-t", "1s",
                             "--barge-in-rate", "5", "--host", "http://127.0.0.1:1"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert locust.returncode == 2 and "must be within 0..1" in locust.stderr
