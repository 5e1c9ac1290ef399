"""Shared fixtures: a real local stack (redis-server + reference target) and a way to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
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
