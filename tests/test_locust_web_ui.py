"""`locust -f locustfile.py` serves Locust's web UI with voiceload's users and options."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port


def test_web_ui_lists_voice_users_and_options():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "locust", "-f", "locustfile.py", "--web-host", "127.0.0.1",
                                "--web-port", str(port), "--host", "http://127.0.0.1:9"], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        page = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200, "web UI did not come up"
        for expected in ("TelephonyCaller", "ApiUser", "target_profile", "turns_per_call", "voiceload_config", "shape"):
            assert expected in page.text, expected
        for plumbing in ("samples_file", "call_log", "run_id", "results_dir", "master_heartbeat_timeout"):  # run_load_tests.py's, not a user's
            assert plumbing not in page.text, plumbing
    finally:
        process.terminate()
        process.wait(timeout=15)
