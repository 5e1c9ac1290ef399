"""`run_load_tests.py --web`: Locust's web UI (with the Voice SLOs tabs) against the target, interactive.

With no --host it starts the local stack first (redis-server, the reference voice agent and, if it can,
the Cosmos DB stand-in), exactly as a headless run does, so the web UI has the same embedded default.
The UI is bound to 127.0.0.1 unless --web-host says otherwise, and then only with --web-login (a
password from VOICELOAD_WEB_PASSWORD, see webui/auth.py). It runs until Ctrl-C / SIGTERM, then stops
the test (so workers deliver their last samples), lets Locust write results/<run-id>/report.json and
stops the stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from config import ConfigError, Settings, load_settings, redact_url
from orchestrator.local_stack import REPO_ROOT, LocalStack, StackError, start_local_stack
from orchestrator.capabilities import BACKENDS, MISSING, NOT_CONFIGURED, absent_endpoints, backend_capabilities, probe_target
from orchestrator.locust_run import locust_env
from orchestrator.preflight import check_reachable
from webui.credentials import credentials_problem

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_WEB_PORT = 8089
LOOPBACK = ("127.0.0.1", "localhost", "::1")
UI_START_TIMEOUT_S = 90.0
STOP_TEST_TIMEOUT_S = 20.0
QUIT_TIMEOUT_S = 40.0


def web_problem(web_host: str, web_login: bool) -> str | None:
    """Why this bind is refused (None: fine): beyond the loopback interface only behind a login."""
    if web_host not in LOOPBACK and not web_login:
        return (f"--web-host {web_host} makes the web UI (which starts and stops load) reachable from other machines: "
                "add --web-login (with VOICELOAD_WEB_PASSWORD set), or leave --web-host at 127.0.0.1")
    if web_login:
        return credentials_problem()
    return None


def _port_problem(web_host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in web_host else socket.AF_INET
    bind_host = "" if web_host in ("*", "0.0.0.0") else web_host
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            return f"cannot serve the web UI on {web_host}:{port}: {exc.strerror or exc} (choose another --web-port)"
    return None


def web_command(args: argparse.Namespace, settings: Settings, host: str, web_host: str, port: int,
                run_id: str, results_dir: Path) -> list[str]:
    """`locust -f locustfile.py` with the web UI: every user class offered in the start form (class picker)."""
    command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), "--web-host", web_host,
               "--web-port", str(port), "--host", host, "--class-picker", "--target-profile", settings.profile,
               "--results-dir", str(results_dir), "--run-id", run_id]
    if getattr(args, "web_login", False):
        command.append("--web-login")
    optional = {"--voiceload-config": getattr(args, "config", None), "--turns-per-call": getattr(args, "turns_per_call", None),
                "--barge-in-rate": getattr(args, "barge_in_rate", None)}
    processes = getattr(args, "processes", None)
    if processes and processes > 1:
        optional["--processes"] = processes
    for option, value in optional.items():
        if value is not None:
            command += [option, str(value)]
    return command


def _ui_url(web_host: str, port: int) -> str:
    shown = socket.gethostname() if web_host in ("*", "0.0.0.0", "") else web_host
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"


def _wait_for_ui(url: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url, timeout=1.0)
            return True
        except httpx.HTTPError:
            time.sleep(0.25)
    return False


def _stop_test(url: str, process: subprocess.Popen) -> None:
    """Stop a running test through the UI first, so workers ship their last samples before Locust quits."""
    try:
        state = httpx.get(url + "stats/requests", timeout=3.0).json().get("state")
        if state not in ("spawning", "running"):
            return
        httpx.post(url + "stop", timeout=10.0)
        deadline = time.monotonic() + STOP_TEST_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if httpx.get(url + "stats/requests", timeout=3.0).json().get("state") == "stopped":
                return
            time.sleep(0.25)
    except (httpx.HTTPError, ValueError):
        pass  # behind --web-login, or already gone: Locust's own SIGTERM handling still writes the report


def _quit_locust(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # Locust quits and writes results/<run-id>/report.json
    try:
        process.wait(timeout=QUIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print("voiceload: Locust did not quit in time; killing it", flush=True)
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its forked workers
        process.wait(timeout=10)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def say_what_the_target_lacks(host: str, settings: Settings, env: dict[str, str], config_file=None) -> list[str]:
    """Probe the target's endpoints and the configured services (orchestrator.capabilities), print one line per
    one it lacks, and return the endpoints every user must leave out."""
    try:
        seen = load_settings(env=env, config_file=config_file)
    except ConfigError:
        seen = settings
    capabilities = probe_target(host, settings) + backend_capabilities(seen)
    for capability in capabilities:
        if capability.status == MISSING or (capability.status == NOT_CONFIGURED and capability.name in BACKENDS):
            print(f"voiceload: {capability.name} {capability.status}: {capability.why} (pick no users that need it; "
                  "the others leave it out)", flush=True)
    return absent_endpoints(capabilities)


def run_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve Locust's web UI until Ctrl-C / SIGTERM; 0 then, 2 bad input, 3 target unreachable, else
    Locust's own exit code when it ends by itself."""
    web_host = getattr(args, "web_host", None) or "127.0.0.1"
    port = getattr(args, "web_port", None) or DEFAULT_WEB_PORT
    if problem := web_problem(web_host, bool(getattr(args, "web_login", False))):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0 < port < 65536:
        print(f"error: --web-port {port} is not a TCP port", file=sys.stderr)
        return EXIT_BAD_INPUT
    if problem := _port_problem(web_host, port):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results_dir = Path(settings.results_dir).resolve()
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-web"
    run_dir = results_dir / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: results dir {results_dir} is not writable: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    stack: LocalStack | None = None
    process: subprocess.Popen | None = None
    log_file = None
    url = _ui_url(web_host, port)
    local_url = f"http://{'127.0.0.1' if web_host in ('*', '0.0.0.0') else web_host}:{port}/"
    code = EXIT_OK
    try:
        host = getattr(args, "host", None) or settings.api_base_url
        if host is None:
            try:
                stack = start_local_stack(run_dir / "logs", with_cosmos=True)
            except StackError as exc:
                print(f"error: local stack could not start: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            host = stack.base_url
        if reason := check_reachable(host, settings.target_profile.health.path, verify=not settings.insecure):
            print(f"error: target {redact_url(host)} unreachable at preflight: {reason}", file=sys.stderr)
            return EXIT_UNREACHABLE
        env = locust_env(sys.argv[1:], settings, stack)
        env["VOICELOAD_ABSENT_ENDPOINTS"] = ",".join(say_what_the_target_lacks(host, settings, env, getattr(args, "config", None)))
        verbose = bool(getattr(args, "verbose", False))
        log_path = run_dir / "locust.log"
        log_file = None if verbose else open(log_path, "wb")
        process = subprocess.Popen(web_command(args, settings, host, web_host, port, run_id, results_dir), cwd=REPO_ROOT,
                                   env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                   stderr=None if verbose else subprocess.STDOUT, start_new_session=True)
        if not _wait_for_ui(local_url, process):
            tail = "" if verbose else log_path.read_text(errors="replace")[-1500:].strip()
            print(f"error: Locust's web UI did not come up (exit code {process.poll()}){': ' + tail if tail else ''}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT if process.poll() == 2 else EXIT_FAIL
        print(f"voiceload: web UI at {url} against {redact_url(host)} · the Voice SLOs tab and {url}voiceload/ show the "
              f"exact percentiles live · Locust's log: {'this terminal' if verbose else log_path} · Ctrl-C stops", flush=True)
        while process.poll() is None:
            time.sleep(0.5)
        code = process.returncode
        print(f"voiceload: Locust ended by itself (exit code {code})", file=sys.stderr)
        code = code if code in (EXIT_OK, EXIT_BAD_INPUT) else EXIT_FAIL
    except KeyboardInterrupt:
        print("\nvoiceload: stopping the test and the web UI …", flush=True)
    finally:
        try:
            if process is not None:
                _stop_test(local_url, process)
                _quit_locust(process)
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        finally:
            if log_file is not None:
                log_file.close()
            if stack is not None:
                stack.stop()
            signal.signal(signal.SIGTERM, previous_sigterm)
    report = run_dir / "report.json"
    if report.exists():
        print(f"report: {report}  ·  {run_dir / 'report.html'}  ·  {run_dir / 'junit.xml'}")
    return code
