"""`run_load_tests.py worker --master-host H`: lend this machine's CPU to a run driven from another one.

A run's groups each have their own Locust master, one after another, group k on port P+k, and a
Locust worker exits when its master quits. So this loop waits for group k's master to listen, runs a
Locust worker against it until that master is done, and goes on to k+1; it ends when no master shows
up within --wait seconds (the run is over), after --max-rounds groups, or on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

from orchestrator.local_stack import REPO_ROOT
from orchestrator.one_line_errors import OneLineErrors


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="run_load_tests.py worker",
                                     description="Join the runs a master started with --expect-workers, as a Locust worker.")
    parser.add_argument("--master-host", required=True, help="address of the machine running run_load_tests.py --expect-workers")
    parser.add_argument("--master-port", type=int, default=5557, help="its --master-bind-port (default 5557); group k "
                        "of the run is served on this port + k")
    parser.add_argument("--processes", type=int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the next group's master before "
                        "ending (default 60)")
    parser.add_argument("--master-heartbeat-timeout", type=float, default=20.0, metavar="S", help="stop this group's "
                        "users and go on when the master is silent for S seconds, e.g. killed (default 20)")
    parser.add_argument("--max-rounds", type=int, default=20, help="most groups to serve before ending (default 20)")
    return parser


def master_listening(host: str, port: int, wait_s: float) -> bool:
    """True once a TCP connection to the master's port succeeds within wait_s."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def worker_command(args: argparse.Namespace, port: int) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), "--worker",
               "--master-host", args.master_host, "--master-port", str(port),
               "--master-heartbeat-timeout", f"{args.master_heartbeat_timeout:g}"]
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    return command


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    served = 0
    while served < args.max_rounds:
        port = args.master_port + served
        if not master_listening(args.master_host, port, args.wait):
            print(f"voiceload worker: no master at {args.master_host}:{port} within {args.wait:g} s; "
                  f"done after {served} group(s)", flush=True)
            return 0
        print(f"voiceload worker: joining group {served + 1}'s master at {args.master_host}:{port}", flush=True)
        process = subprocess.Popen(worker_command(args, port), cwd=REPO_ROOT)
        try:
            process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait(timeout=30)
            return 130
        served += 1
    return 0
