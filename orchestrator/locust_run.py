"""Run Locust headless as a child process, show progress while it runs, stop it cleanly on Ctrl-C."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.local_stack import REPO_ROOT

CSV_PREFIX = "locust"
# Locust's CSV names -> the names DESIGN.md's report contract uses.
CSV_NAMES = {"stats": "stats.csv", "stats_history": "stats_history.csv", "failures": "failures.csv", "exceptions": "exceptions.csv"}


@dataclass
class LocustRun:
    exit_code: int
    interrupted: bool
    log_path: Path


def locust_command(run_dir: Path, host: str, users: int, spawn_rate: float, run_time_s: int, options: dict[str, object]) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), "--headless",
               "--host", host, "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{run_time_s}s",
               "--stop-timeout", "10", "--csv", str(run_dir / CSV_PREFIX), "--only-summary",
               "--results-dir", str(run_dir.parent), "--run-id", run_dir.name]
    for name, value in options.items():
        if value not in (None, "", False):
            command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def _progress(run_dir: Path, started: float, total_s: int) -> str:
    """One line from Locust's live CSV: elapsed, users, requests, failures, rps."""
    line = f"  [{time.monotonic() - started:5.0f}s/{total_s}s]"
    try:
        with open(run_dir / f"{CSV_PREFIX}_stats_history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        last = next(r for r in reversed(rows) if r.get("Name") == "Aggregated")
        line += (f" users {last['User Count']:>4} · requests {last['Total Request Count']:>6} · failures {last['Total Failure Count']:>4}"
                 f" · rps {float(last['Requests/s']):6.1f}")
    except (OSError, StopIteration, KeyError, ValueError):
        line += " starting…"
    return line


def run_locust(command: list[str], run_dir: Path, total_s: int, env: dict[str, str], verbose: bool = False,
               progress_every_s: float = 10.0) -> LocustRun:
    """Run Locust to completion; on Ctrl-C send it SIGTERM so it still writes its reports."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "locust.log"
    interrupted = False
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=None if verbose else log_file, stderr=None if verbose else subprocess.STDOUT,
                                   cwd=REPO_ROOT, env=env, start_new_session=True)
        started = time.monotonic()
        next_progress = started + progress_every_s
        hard_deadline = started + total_s + 90
        try:
            while process.poll() is None:
                time.sleep(0.2)
                now = time.monotonic()
                if now >= next_progress and not verbose:
                    print(_progress(run_dir, started, total_s), flush=True)
                    next_progress = now + progress_every_s
                if now > hard_deadline:
                    print("  locust did not stop in time; stopping it", flush=True)
                    process.send_signal(signal.SIGTERM)
                    hard_deadline = now + 30
                    interrupted = True
        except KeyboardInterrupt:
            interrupted = True
            print("\n  interrupted: stopping Locust and writing the partial report…", flush=True)
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()
    rename_csvs(run_dir)
    return LocustRun(process.returncode, interrupted, log_path)


def rename_csvs(run_dir: Path) -> None:
    for suffix, name in CSV_NAMES.items():
        source = run_dir / f"{CSV_PREFIX}_{suffix}.csv"
        if source.exists():
            source.replace(run_dir / name)
