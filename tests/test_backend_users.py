"""RedisUser under `python -m locust` without REDIS_URL: skipped with one line. The Redis and LLM users'
measurements against real services are in tests/test_backend_inprocess.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from orchestrator.local_stack import REPO_ROOT


def run_locust(host: str, results, run_id: str, classes: list[str], env: dict[str, str], seconds: int = 8) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OPENAI_ENDPOINT")}
    subprocess.run([sys.executable, "-m", "locust", "-f", "locustfile.py", *classes, "--headless", "--host", host,
                    "-u", str(len(classes) * 2), "-r", "10", "-t", f"{seconds}s", "--stop-timeout", "5", "--only-summary",
                    "--results-dir", str(results), "--run-id", run_id],
                   cwd=REPO_ROOT, capture_output=True, timeout=90, env={**clean, **env})
    return json.loads((results / run_id / "report.json").read_text())


def test_redis_user_without_redis_url_is_skipped_with_one_line(start_stack, tmp_path):
    stack = start_stack()
    report = run_locust(stack.base_url, tmp_path, "noredis", ["RedisUser"], {}, seconds=3)
    assert not any(name.startswith("redis_") for name in report["metrics"])
    assert any(e["kind"] == "redis" and "REDIS_URL is not set" in e["message"] for e in report["errors"])
