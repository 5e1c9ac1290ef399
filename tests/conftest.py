"""Shared fixtures: a real local stack (redis-server + reference target), a fixture agent that shares no code
with voiceload, a way to run the CLI; and the machine share between parallel test workers.

The suite runs on several pytest-xdist workers at once (pytest.ini): most tests wait on real time (runs of
fixed length), not on the CPU. Two markers protect the figures that other workers' load would distort:
- `priority` (the generator's frame lateness, latencies within milliseconds): all run on one worker, one after
  another; where the workers may change their niceness (root, as in CI), every other test runs at niceness
  10 and a priority test at 0, so its processes get the CPU whenever they want it; elsewhere it runs alone,
  as an exclusive test does.
- `exclusive` (latencies against ground truth to the millisecond): waits until the running tests end, runs
  alone, and new tests wait for it (a readers-writer lock over two lock files, writers first).
Exclusive tests are scheduled first, when nothing is running yet, then the long ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestrator.cosmos_server import CosmosServer
from orchestrator.local_stack import REPO_ROOT, LocalStack, StackError


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "exclusive: runs alone, with no other test on the machine (its figures "
                            "would be distorted by the other workers' load)")
    config.addinivalue_line("markers", "priority: its processes take the CPU before the other tests' (its figures "
                            "would be distorted by the other workers' load; see tests/conftest.py)")
    config.addinivalue_line("markers", "long: takes 20 s or more of real time; started early so the run does not "
                            "end waiting for it")


SHARED_NICENESS = 10  # every xdist worker, and all it starts, yields the CPU to a priority test's processes


def _may_raise_priority() -> bool:
    """Can this process take back a niceness of 0 (root or CAP_SYS_NICE)?"""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0))
        return os.geteuid() == 0
    except OSError:
        return False


_PRIORITY = bool(os.environ.get("PYTEST_XDIST_WORKER")) and _may_raise_priority()


@contextlib.contextmanager
def machine_share(exclusive: bool, priority: bool = False):
    """Hold the machine shared (most tests), with priority, or alone (`exclusive`, or `priority` where niceness
    cannot be changed), across every xdist worker of this run (see the module docstring)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: nothing else runs beside the test
        yield
        return
    if _PRIORITY:
        os.setpriority(os.PRIO_PROCESS, 0, 0 if exclusive or priority else SHARED_NICENESS)
    try:
        with _machine_lock(run, alone=exclusive or (priority and not _PRIORITY)):
            yield
    finally:
        if _PRIORITY:
            os.setpriority(os.PRIO_PROCESS, 0, SHARED_NICENESS)


@contextlib.contextmanager
def _machine_lock(run: str, alone: bool):
    """Shared, or alone: a readers-writer lock over two files, writers first (one waiting keeps new readers out)."""
    base = Path(tempfile.gettempdir()) / f"voiceload-tests-{run}"
    with open(f"{base}.gate", "a+") as gate, open(f"{base}.share", "a+") as share:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if alone:
            fcntl.flock(share, fcntl.LOCK_EX)  # until the running tests end
        else:
            fcntl.flock(share, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(share, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def pytest_collection_modifyitems(session, config, items) -> None:
    """Priority tests go to one worker, one after another (beside each other they would distort each other's
    figures), and first, as that worker has the most to do; then exclusive tests (at the start no other test
    is running yet, so none has to wait for the machine to empty out), then the long ones (so the run does not
    end waiting for one started last)."""
    for item in items:
        if item.get_closest_marker("priority") is not None:
            item.add_marker(pytest.mark.xdist_group("priority"))
    items.sort(key=lambda item: (item.get_closest_marker("priority") is None, item.get_closest_marker("exclusive") is None,
                                 item.get_closest_marker("long") is None))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with machine_share(item.get_closest_marker("exclusive") is not None, item.get_closest_marker("priority") is not None):
        yield


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


def calls_running(progress_line: str) -> bool:
    """A progress line of run_load_tests.py's websocket group once its callers are running (users above 0)."""
    return progress_line.lstrip().startswith("websocket [") and re.search(r" users +[1-9]", progress_line) is not None


def latest_report(results_dir: Path) -> dict:
    import json

    return json.loads((results_dir / "latest" / "report.json").read_text())


class FixtureAgent:
    """tests/fixture_agent.py (a voice agent that shares no code with voiceload) in its own process, in a
    mode: healthy, silent, every_other, slow or drops. Its log goes to a file, never to an unread pipe."""

    def __init__(self, mode: str, log_path: Path, *extra: str) -> None:
        from orchestrator.ports import free_port

        self.mode, self.port, self.log_path = mode, free_port(), log_path
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "fixture_agent.py"), "--port",
                                             str(self.port), "--mode", mode, *extra], stdout=log, stderr=subprocess.STDOUT)
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

    def start(mode: str, *extra: str) -> FixtureAgent:
        agents.append(FixtureAgent(mode, tmp_path / f"agent-{mode}-{len(agents)}.log", *extra))
        return agents[-1]

    yield start
    for agent in agents:
        agent.stop()
