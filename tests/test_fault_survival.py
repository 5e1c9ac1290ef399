"""What survives when the system under test breaks mid-run: every run ends on its own within its time
limit plus the stop timeout, with a complete report that counts the failures by kind."""

from __future__ import annotations

import pytest

import os
import socket
import subprocess
import sys
import time

import httpx
import psutil

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port
from tests.conftest import calls_running, latest_report, run_cli

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

STOP_TIMEOUT_S = 10  # what run_load_tests gives the websocket group


def start_target(port: int, log) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "target", "--port", str(port)], cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)  # polling a server that is starting: there is no event to wait on
    process.kill()
    raise AssertionError("target did not come up")


def test_target_killed_and_restarted_mid_run(tmp_path):
    port = free_port()
    log = (tmp_path / "target.log").open("w")
    target = start_target(port, log)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    run = subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "--host", f"http://127.0.0.1:{port}",
                            "--group", "websocket", "--websocket-users", "3", "-t", "12s", "--turns-per-call", "1", "--progress-every", "5",
                            "--results-dir", str(tmp_path / "results")],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started, seen, restarted = time.monotonic(), [], None
    try:
        for line in run.stdout:
            seen.append(line)
            if calls_running(line) and restarted is None:  # 5 s in, calls are running
                target.kill()
                target.wait()
                restarted = target = start_target(port, log)
        run.wait(timeout=120)
    finally:
        run.kill()
        target.kill()
        log.close()
    output = "".join(seen)
    assert restarted is not None, output
    assert time.monotonic() - started < 12 + STOP_TIMEOUT_S + 40, output  # ended on its own
    assert run.returncode in (0, 1, 4), output
    report = latest_report(tmp_path / "results")
    summary = report["summary"]
    assert summary["calls_failed"] + summary["ws_dropped"] + summary["calls_interrupted"] > 0, summary
    assert report["errors"] and all(e["count"] > 0 for e in report["errors"])
    assert summary["calls_completed"] > 0  # before the kill, and again after the restart
    assert report["metrics"]["voice_loop"]["count"] > 0


def test_a_target_that_accepts_and_never_answers_exits_3_in_bounded_time(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshakes; nobody ever reads or answers
    try:
        started = time.monotonic()
        result = run_cli(["--host", f"http://127.0.0.1:{listener.getsockname()[1]}", "--results-dir", str(tmp_path)],
                         timeout=60)
        assert result.returncode == 3, result.stdout + result.stderr
        assert time.monotonic() - started < 20
        assert "unreachable at preflight" in result.stderr and "Timeout" in result.stderr
    finally:
        listener.close()


def running(process: psutil.Process) -> bool:
    """Still running: an orphan that exited stays a zombie until init reaps it, which counts as exited."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_exited(processes: list[psutil.Process], deadline: float) -> list[int]:
    """The pids still running at `deadline` (monotonic). Orphans are not our children: no wait() to block on."""
    while (alive := [p for p in processes if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p.pid for p in alive]


def test_a_killed_master_leaves_no_worker_behind_and_the_run_still_reports(start_stack, tmp_path):
    """The master dies (SIGKILL, as an OOM kill would): its workers hear no heartbeat, stop their users and
    exit by themselves within the heartbeat timeout plus the stop timeout; the run still writes a report
    that says the group left nothing, marked interrupted, and fails."""
    stack = start_stack()
    heartbeat_timeout_s = 4
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    env["VOICELOAD_MASTER_HEARTBEAT_TIMEOUT"] = str(heartbeat_timeout_s)
    run = subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "--host", stack.base_url, "--group",
                            "websocket", "-u", "4", "-t", "60s", "--workers", "2", "--turns-per-call", "1", "--progress-every", "5",
                            "--results-dir", str(tmp_path)],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, workers, killed_at = [], [], None
    try:
        for line in run.stdout:
            seen.append(line)
            if calls_running(line) and killed_at is None:  # 5 s in: calls are running
                master = next(p for p in psutil.Process(run.pid).children() if "locust" in " ".join(p.cmdline()))
                workers = master.children()
                master.kill()
                killed_at = time.monotonic()
        run.wait(timeout=60)
        alive = wait_until_exited(workers, killed_at + heartbeat_timeout_s + STOP_TIMEOUT_S + 5)
    finally:
        run.kill()
        for worker in workers:
            if running(worker):
                worker.kill()
    output = "".join(seen)
    assert killed_at is not None and len(workers) == 2, output
    assert not alive, f"workers still running after the heartbeat timeout: {alive}"
    assert run.returncode == 1, output
    report = latest_report(tmp_path)
    assert report["run"]["interrupted"] is True and report["summary"]["verdict"] == "fail"
    assert report["run"]["groups"][0]["exit_code"] == -9
    assert any("group websocket left no samples (Locust exit code -9)" in m for m in report["summary"]["messages"])
