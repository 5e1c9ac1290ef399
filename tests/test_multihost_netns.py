"""A distributed run across four "hosts": Linux network namespaces joined by veth pairs and a bridge.

    target 10.213.0.10 (redis-server on its own 127.0.0.1 + the reference agent on :8000)
    master 10.213.0.11 (run_load_tests.py --expect-workers 2 --master-bind-host 10.213.0.11)
    worker 10.213.0.12, worker 10.213.0.13 (run_load_tests.py worker --master-host 10.213.0.11)

The bridge lives in a fifth, "switch" namespace, so nothing is added to this machine's own network and
no traffic leaves these namespaces. Each namespace has its own ports, so fixed ones are used. Needs root
and a kernel that allows namespaces, veth and bridges; otherwise the test is skipped.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.local_stack import REPO_ROOT, StackError, redis_server_binary
from tests.conftest import latest_report

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

NET = "10.213.0"
ADDRESSES = {"target": f"{NET}.10", "master": f"{NET}.11", "worker1": f"{NET}.12", "worker2": f"{NET}.13"}
TARGET_PORT, REDIS_PORT, MASTER_PORT = 8000, 6390, 5557
TARGET_URL = f"http://{ADDRESSES['target']}:{TARGET_PORT}"
HEALTH_PROBE = ("import sys, urllib.request\n"
                "print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())")
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


def clean_env() -> dict[str, str]:
    """The environment the other end-to-end tests use, without proxies (nothing outside the namespaces is reachable)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_")) and k.lower() not in PROXY_VARS}


class Lan:
    """The namespaces, and every process started in them (killed at teardown)."""

    def __init__(self, ip: str, redis: str, suffix: str, work: Path):
        self.ip, self.redis = ip, redis
        self.names = {host: f"vl-{host}-{suffix}" for host in [*ADDRESSES, "switch"]}
        self.created: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.work = work

    def run(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run([self.ip, *args], capture_output=True, text=True, timeout=timeout)

    def must(self, *args: str) -> None:
        result = self.run(*args)
        assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr.strip()}"

    def exec(self, host: str, *command: str, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run([self.ip, "netns", "exec", self.names[host], *command], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO_ROOT, env=clean_env())

    def spawn(self, host: str, name: str, *command: str) -> tuple[subprocess.Popen, Path]:
        """Start a command in a host's namespace, in its own process group, output to a log file."""
        log = self.work / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen([self.ip, "netns", "exec", self.names[host], *command], cwd=REPO_ROOT,
                                       env=clean_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process, log

    def build(self) -> None:
        for name in self.names.values():
            result = self.run("netns", "add", name)
            if result.returncode != 0:
                pytest.skip(f"network namespaces unavailable (ip netns add: {result.stderr.strip()})")
            self.created.append(name)
        switch = self.names["switch"]
        result = self.run("-n", switch, "link", "add", "br0", "type", "bridge")
        if result.returncode != 0:
            pytest.skip(f"no Linux bridge in this kernel (ip link add type bridge: {result.stderr.strip()})")
        self.must("-n", switch, "link", "set", "lo", "up")
        self.must("-n", switch, "link", "set", "br0", "up")
        for host, address in ADDRESSES.items():
            ns, port = self.names[host], f"p-{host}"
            # one end on the switch, the other (eth0) straight into the host's namespace: never in ours
            result = self.run("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            if result.returncode != 0:
                pytest.skip(f"no veth pairs in this kernel (ip link add type veth: {result.stderr.strip()})")
            self.must("-n", switch, "link", "set", port, "master", "br0")
            self.must("-n", switch, "link", "set", port, "up")
            self.must("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            self.must("-n", ns, "link", "set", "lo", "up")
            self.must("-n", ns, "link", "set", "eth0", "up")

    def teardown(self) -> None:
        for process in self.processes:
            stop_group(process)
        for name in self.created:  # anything still inside one of our namespaces was started by this test
            listed = self.run("netns", "pids", name)
            for pid in listed.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for name in reversed(self.created):  # the veth pairs and the bridge go with their namespaces
            self.run("netns", "del", name)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lan(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)
    if ip is None:
        pytest.skip("iproute2 (`ip`) is not installed")
    try:
        redis = redis_server_binary()
    except StackError as exc:
        pytest.skip(str(exc))
    work = tmp_path / "lan"
    work.mkdir()
    net = Lan(ip, redis, secrets.token_hex(3), work)
    try:
        net.build()
        yield net
    finally:
        net.teardown()


def health(lan: Lan, host: str) -> dict | None:
    """The target's health as seen from another host's namespace (None: not answering)."""
    import json

    try:
        result = lan.exec(host, sys.executable, "-c", HEALTH_PROBE, f"{TARGET_URL}/api/v1/health", timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(result.stdout) if result.returncode == 0 else None


def watch_peers(lan: Lan, stop: threading.Event, peers: set[str]) -> None:
    """Addresses with an established connection to the target's port, sampled in its namespace until stop."""
    address = re.compile(r"^(\S+):(\d+)$")
    while not stop.wait(0.3):
        try:
            result = lan.exec("target", "ss", "-Htn", "state", "established", timeout=5)
        except subprocess.TimeoutExpired:
            continue
        for line in result.stdout.splitlines():
            ends = [m.groups() for m in map(address.match, line.split()) if m]
            if len(ends) >= 2 and ends[0][1] == str(TARGET_PORT):
                peers.add(ends[1][0].removeprefix("[::ffff:").rstrip("]"))


@pytest.mark.timeout(240)
def test_a_run_spread_over_separate_hosts_reaches_the_target_from_every_worker(lan, tmp_path):
    assert shutil.which("ss"), "ss (iproute2) is needed to see who connects to the target"
    redis, _ = lan.spawn("target", "redis", lan.redis, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no")
    target, target_log = lan.spawn("target", "target", sys.executable, "-m", "target", "--bind", ADDRESSES["target"],
                                   "--port", str(TARGET_PORT), "--redis-url", f"redis://127.0.0.1:{REDIS_PORT}",
                                   "--latency-mode", "fixed")
    deadline, seen = time.monotonic() + 30, None
    while time.monotonic() < deadline and target.poll() is None:
        seen = health(lan, "master")  # across the bridge, from the master's namespace
        if seen and seen.get("status") == "healthy":
            break
        time.sleep(0.5)
    assert seen and seen.get("status") == "healthy", (seen, target.poll(), target_log.read_text())

    peers: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=watch_peers, args=(lan, stop, peers), daemon=True)
    watcher.start()
    results = tmp_path / "results"
    master, master_log = lan.spawn("master", "master", sys.executable, str(REPO_ROOT / "run_load_tests.py"),
                                   "--host", TARGET_URL, "--backend-users", "0", "--integration-users", "0", "-u", "4",
                                   "-t", "5s", "--turns-per-call", "1", "--expect-workers", "2",
                                   "--master-bind-host", ADDRESSES["master"], "--master-bind-port", str(MASTER_PORT),
                                   "--results-dir", str(results))
    workers = [lan.spawn(host, host, sys.executable, str(REPO_ROOT / "run_load_tests.py"), "worker", "--master-host",
                         ADDRESSES["master"], "--master-port", str(MASTER_PORT), "--wait", "6")
               for host in ("worker1", "worker2")]
    try:
        master.wait(timeout=150)
        for worker, _ in workers:
            worker.wait(timeout=60)  # each ends by itself once no third master comes
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop.set()
        watcher.join(timeout=10)
    after = health(lan, "worker1")  # a worker's host reaches the target too
    output = master_log.read_text()
    outputs = {host: log.read_text() for (_, log), host in zip(workers, ("worker1", "worker2"))}
    everything = f"master:\n{output}\n" + "".join(f"{host}:\n{text}\n" for host, text in outputs.items())

    # the topology is under test, not the SLOs: a short run whose workers are still starting can miss them
    assert master.returncode in (0, 1, 4), everything
    report = latest_report(results)
    run = report["run"]
    assert run["host"] == TARGET_URL, run["host"]
    assert [g["name"] for g in run["groups"]] == ["api", "websocket"] and run["workers"] == 2, (run, everything)
    assert report["metrics"]["api_response_time"]["count"] > 0 and report["metrics"]["voice_loop"]["count"] > 0, everything
    assert report["summary"]["calls_completed"] > 0, everything
    for (worker, _), (host, text) in zip(workers, outputs.items()):
        assert worker.returncode == 0 and "done after 2 group(s)" in text, f"{host} exited {worker.returncode}:\n{text}"
    # the load really crossed the bridge: both worker hosts held connections to the target, and nothing else did
    assert {ADDRESSES["worker1"], ADDRESSES["worker2"]} <= peers, (peers, everything)
    assert all(peer.startswith(f"{NET}.") for peer in peers), peers
    assert after and after["calls_total"] > 0, after
    assert redis.poll() is None and target.poll() is None, target_log.read_text()
