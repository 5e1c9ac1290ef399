"""Backend users through their real clients: redis-py against a real redis-server, the openai SDK
against the reference target's OpenAI-compatible streaming endpoint (fixed latencies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.local_stack import REPO_ROOT


def run_locust(host: str, results, run_id: str, classes: list[str], env: dict[str, str], seconds: int = 8) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OPENAI_ENDPOINT")}
    subprocess.run([sys.executable, "-m", "locust", "-f", "locustfile.py", *classes, "--headless", "--host", host,
                    "-u", str(len(classes) * 2), "-r", "10", "-t", f"{seconds}s", "--stop-timeout", "5", "--only-summary",
                    "--results-dir", str(results), "--run-id", run_id],
                   cwd=REPO_ROOT, capture_output=True, timeout=90, env={**clean, **env})
    return json.loads((results / run_id / "report.json").read_text())


def test_redis_and_llm_users_measure_real_services(start_stack, tmp_path):
    stack = start_stack("--latency-mode", "fixed", "--llm-ttft-ms", "150", "--llm-tokens-per-s", "50", "--llm-slots", "100")
    report = run_locust(stack.base_url, tmp_path, "backend", ["RedisUser", "LLMUser"], {"REDIS_URL": stack.redis_url})
    metrics = report["metrics"]
    for name in ("redis_hgetall", "redis_hset", "redis_publish", "redis_set", "redis_get", "redis_pubsub_delivery"):
        assert metrics[name]["count"] > 0 and metrics[name]["failures"] == 0, name
    assert report["summary"]["success_rate"] == 100.0
    # modelled: first token 150 ms after the request (plus HTTP and SDK overhead), then 50 tokens/s
    assert 150 <= metrics["llm_ttft"]["p50"] <= 180, metrics["llm_ttft"]
    assert metrics["llm_token_interval"]["p50"] == pytest.approx(20.0, abs=3), metrics["llm_token_interval"]
    assert metrics["llm_tokens_per_s"]["p50"] == pytest.approx(50.0, rel=0.1), metrics["llm_tokens_per_s"]
    assert next(s for s in report["slo"] if s["metric"] == "llm_ttft")["status"] == "pass"
    assert any(r["type"] == "openai" for r in report["requests"]) and any(r["type"] == "redis" for r in report["requests"])


def test_redis_user_without_redis_url_is_skipped_with_one_line(start_stack, tmp_path):
    stack = start_stack()
    report = run_locust(stack.base_url, tmp_path, "noredis", ["RedisUser"], {}, seconds=3)
    assert not any(name.startswith("redis_") for name in report["metrics"])
    assert any(e["kind"] == "redis" and "REDIS_URL is not set" in e["message"] for e in report["errors"])
