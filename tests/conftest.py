"""Shared fixtures: a real local stack (redis-server + reference target) and a way to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestrator.cosmos_server import CosmosServer
from orchestrator.local_stack import REPO_ROOT, LocalStack, StackError


@pytest.fixture
def start_stack(tmp_path):
    """Start a LocalStack with extra target arguments; every stack is stopped at teardown."""
    stacks: list[LocalStack] = []

    def start(*target_args: str) -> LocalStack:
        stack = LocalStack(tmp_path / f"stack-{len(stacks)}", list(target_args)).start()
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory):
    """One local stack (redis-server + reference target, defaults) shared by a test file's runs."""
    local = LocalStack(tmp_path_factory.mktemp("stack")).start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def cosmos(tmp_path_factory):
    """The npm Cosmos DB stand-in (installed by `npm ci --prefix stack`)."""
    server = CosmosServer(tmp_path_factory.mktemp("cosmos-logs"))
    try:
        server.start()
    except StackError as exc:
        pytest.skip(str(exc))  # the message says how to fix it: npm ci --prefix stack
    yield server
    server.stop()


def run_cli(args: list[str], timeout: float = 150, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run run_load_tests.py as a user would, in its own process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(REPO_ROOT / "run_load_tests.py"), *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def latest_report(results_dir: Path) -> dict:
    import json

    return json.loads((results_dir / "latest" / "report.json").read_text())


class FixtureAgent:
    """tests/fixture_agent.py (a voice agent that shares no code with voiceload) in its own process, in a
    mode: healthy, silent, every_other, slow or drops. Its log goes to a file, never to an unread pipe."""

    def __init__(self, mode: str, log_path: Path) -> None:
        from orchestrator.ports import free_port

        self.mode, self.port, self.log_path = mode, free_port(), log_path
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "fixture_agent.py"), "--port",
                                             str(self.port), "--mode", mode], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"fixture agent ({mode}) not healthy within 15 s: {log_path.read_text()[-1000:]}")
            time.sleep(0.05)  # poll interval, not synchronization

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/api/v1/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def start_agent(tmp_path):
    """Start fixture agents by mode (FixtureAgent); all are stopped at teardown."""
    agents: list[FixtureAgent] = []

    def start(mode: str) -> FixtureAgent:
        agents.append(FixtureAgent(mode, tmp_path / f"agent-{mode}-{len(agents)}.log"))
        return agents[-1]

    yield start
    for agent in agents:
        agent.stop()
