"""The generator watches itself, and a misbehaving agent is counted, never a crash."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
import time

import httpx

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port
from run_load_tests import EXIT_FAIL, EXIT_GENERATOR, EXIT_PASS, exit_code_for

pytestmark = pytest.mark.long  # started early: see tests/conftest.py


def locust(host: str, results, run_id: str, files: str, classes: list[str], users: int, seconds: int) -> dict:
    subprocess.run([sys.executable, "-m", "locust", "-f", files, *classes, "--headless", "--host", host,
                    "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "10", "--only-summary",
                    "--results-dir", str(results), "--run-id", run_id, "--turns-per-call", "1"],
                   cwd=REPO_ROOT, capture_output=True, timeout=120, env=dict(os.environ))
    return json.loads((results / run_id / "report.json").read_text())


def test_a_blocked_generator_is_flagged_unhealthy(start_stack, tmp_path):
    stack = start_stack()
    report = locust(stack.base_url, tmp_path, "blocked", "locustfile.py,tests/loop_blocker.py",
                    ["TelephonyCaller", "LoopBlocker"], users=3, seconds=10)
    summary = report["summary"]
    assert summary["generator_healthy"] is False
    assert summary["generator"]["frame_lateness_p99_ms"] > 10
    assert any("Add workers" in m for m in summary["messages"])
    assert exit_code_for(report, strict=False) in (EXIT_GENERATOR, EXIT_FAIL)


def test_exit_codes_from_verdicts():
    def report(verdict, healthy=True):
        return {"summary": {"verdict": verdict, "generator_healthy": healthy}}

    assert exit_code_for(report("pass"), strict=False) == EXIT_PASS
    assert exit_code_for(report("warn"), strict=False) == EXIT_PASS
    assert exit_code_for(report("warn"), strict=True) == EXIT_FAIL
    assert exit_code_for(report("fail"), strict=False) == EXIT_FAIL
    assert exit_code_for(report("pass", healthy=False), strict=False) == EXIT_GENERATOR
    assert exit_code_for(report("fail", healthy=False), strict=False) == EXIT_FAIL


def test_malformed_frames_and_a_dropped_socket_are_counted_not_fatal(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.misbehaving_agent:app", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning"], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        report = locust(f"http://127.0.0.1:{port}", tmp_path, "misbehaving", "locustfile.py", ["TelephonyCaller"],
                        users=2, seconds=6)
    finally:
        server.terminate()
        server.wait(timeout=10)
    errors = {(e["kind"], e["message"]): e["count"] for e in report["errors"]}
    kinds = {kind for kind, _ in errors}
    assert "exception" not in kinds, errors  # no user crashed
    protocol = {message: count for (kind, message), count in errors.items() if kind == "protocol"}
    for reason in ("invalid JSON", "JSON frame is not an object", "bad base64", "binary frame where JSON text is expected"):
        assert any(reason in message for message in protocol), (reason, protocol)
    assert report["summary"]["malformed_frames"] >= 5  # every bad frame of at least one whole call
    assert any(kind == "unexpected" and "mystery" in message for kind, message in errors)
    assert "ws_dropped" in kinds and report["summary"]["ws_dropped"] >= 1
    assert report["summary"]["calls_failed"] >= 1 and report["summary"]["calls_completed"] == 0


@pytest.mark.priority  # voice_loop against the target's fixed delays, to within 15 ms
def test_leading_silence_in_the_agents_reply_counts_against_the_agent(start_stack, tmp_path):
    """voice_loop ends at the first *audible* agent frame: 400 ms of silence before the agent speaks
    must show up in full, not be hidden by the first (silent) audio frame's arrival."""
    from audio.pcm import read_wav, write_wav
    from audio.fixtures import AUDIO_DIR, clip_by_id

    clip = clip_by_id("agent_ack")
    assert clip.speech_start_ms == 0
    pcm, rate = read_wav(AUDIO_DIR / "agent" / "agent_ack.wav")
    write_wav(tmp_path / "late_agent.wav", b"\x00\x00" * (rate * 400 // 1000) + pcm, rate)
    manifest = {"clips": [{"id": "late_agent", "role": "agent", "file": "late_agent.wav", "text": clip.text,
                           "sample_rate": rate, "speech_start_ms": 400, "speech_end_ms": clip.speech_end_ms + 400,
                           "duration_ms": clip.duration_ms + 400}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    fixed = ["--latency-mode", "fixed", "--stt-final-ms", "60", "--llm-ttft-ms", "150", "--tts-first-byte-ms", "50"]
    prompt = start_stack(*fixed)
    late = start_stack(*fixed, "--audio-manifest", str(tmp_path / "manifest.json"))
    normal_loop = locust(prompt.base_url, tmp_path, "prompt", "locustfile.py", ["TelephonyCaller"], 1, 8)["metrics"]["voice_loop"]
    late_loop = locust(late.base_url, tmp_path, "late", "locustfile.py", ["TelephonyCaller"], 1, 8)["metrics"]["voice_loop"]
    assert abs(late_loop["p50"] - (280 + 260 + 400)) <= 15, late_loop
    assert late_loop["min"] - normal_loop["min"] >= 380  # the 400 ms of silence, give or take scheduling
