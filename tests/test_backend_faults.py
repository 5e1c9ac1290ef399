"""A backend service dying mid-run: counted connection errors, a finished report, recovery when it
returns; and its password never reaches any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import redis

from orchestrator.local_stack import REPO_ROOT, redis_server_binary
from orchestrator.ports import free_port

PASSWORD = "voiceload-redis-secret-7"


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--requirepass", PASSWORD], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return process
        except redis.RedisError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")


def test_redis_killed_mid_run_is_counted_and_recovered(tmp_path):
    port = free_port()
    server = start_redis(port)
    env = {**os.environ, "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/0"}
    locust = subprocess.Popen([sys.executable, "-m", "locust", "-f", "locustfile.py", "RedisUser", "--headless",
                               "--host", "http://127.0.0.1:9", "-u", "2", "-r", "2", "-t", "14s", "--stop-timeout", "3",
                               "--only-summary", "--results-dir", str(tmp_path), "--run-id", "redis-fault"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        healthy = redis.Redis(port=port, password=PASSWORD)
        deadline = time.monotonic() + 30
        while not healthy.keys("session:*"):  # the users are writing sessions against a healthy server
            assert time.monotonic() < deadline and locust.poll() is None, "the Redis users never wrote a session"
            time.sleep(0.1)  # poll interval
        server.kill()
        server.wait(timeout=5)
        time.sleep(3)  # the outage: three seconds without Redis
        server = start_redis(port)  # back, empty, on the same address
        output, _ = locust.communicate(timeout=60)
        recovered = redis.Redis(port=port, password=PASSWORD).keys("session:*")
    finally:
        locust.kill()
        server.kill()
        server.wait(timeout=5)
    report = json.loads((tmp_path / "redis-fault" / "report.json").read_text())
    assert not any(e["kind"] == "exception" for e in report["errors"]), report["errors"]
    assert report["metrics"]["redis_hset"]["failures"] > 0
    assert any(e["kind"] == "redis_hset" and "ConnectionError" in e["message"] for e in report["errors"]), report["errors"]
    assert recovered, "no session written after redis-server came back"
    outputs = [p.read_text(errors="replace") for p in (tmp_path / "redis-fault").rglob("*") if p.is_file()] + [output]
    assert not any(PASSWORD in text for text in outputs)
