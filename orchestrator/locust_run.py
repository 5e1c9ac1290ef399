"""Run Locust headless as a child process, show progress while it runs, stop it cleanly on Ctrl-C."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from orchestrator.local_stack import REPO_ROOT, LocalStack

CSV_PREFIX = "locust"
# Locust's CSV names -> the names of the report contract (docs/design.md, Report contract).
CSV_NAMES = {"stats": "stats.csv", "stats_history": "stats_history.csv", "failures": "failures.csv", "exceptions": "exceptions.csv"}


@dataclass
class LocustRun:
    exit_code: int
    interrupted: bool
    log_path: Path


def locust_command(run_dir: Path, host: str, users: int | None, spawn_rate: float, run_time_s: int | None,
                   options: dict[str, object], user_classes: tuple[str, ...] = (), stop_timeout_s: int = 10) -> list[str]:
    """Headless Locust for one group; users and run time None when a --shape in `options` sets them."""
    command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "locustfile.py"), *user_classes, "--headless",
               "--host", host, "--stop-timeout", str(stop_timeout_s), "--csv", str(run_dir / CSV_PREFIX), "--only-summary",
               "--results-dir", str(run_dir.parent), "--run-id", run_dir.name]
    if users is not None and run_time_s is not None:
        command += ["-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{run_time_s}s"]
    for name, value in options.items():
        if value is True:
            command.append(f"--{name.replace('_', '-')}")
        elif value not in (None, "", False):
            command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def _progress(job: "LocustJob", started: float) -> str:
    """One line from Locust's live CSV: group, time into its load (never past its run time: after that it is
    finishing its calls), users, requests, failures, rps."""
    try:
        with open(job.run_dir / f"{CSV_PREFIX}_stats_history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        elapsed = time.time() - float(rows[0]["Timestamp"])
        last = next(r for r in reversed(rows) if r.get("Name") == "Aggregated")
    except (OSError, IndexError, StopIteration, KeyError, ValueError):
        return f"  {job.name} [{time.monotonic() - started:4.0f}s] starting…"
    clock = (f"{elapsed:4.0f}s/{job.total_s}s" if elapsed <= job.total_s else
             f"{job.total_s}s/{job.total_s}s, finishing its calls")
    return (f"  {job.name} [{clock}] users {last['User Count']:>4} · requests {last['Total Request Count']:>6} · "
            f"failures {last['Total Failure Count']:>4} · rps {float(last['Requests/s']):6.1f}")


@dataclass
class LocustJob:
    name: str  # shown in progress lines
    command: list[str]
    run_dir: Path
    total_s: int
    start_after: float | str | None = None  # seconds after the first job started, or the name of a job to follow
    title: str = ""  # the line printed when it starts


def _due(job: LocustJob, elapsed_s: float, ended: set[str], names: set[str]) -> bool:
    """Whether `job` may start now: at once, after its seconds, or once the job it follows ended (a job
    following one that is not in this run starts at once)."""
    rule = job.start_after
    if rule is None:
        return True
    if isinstance(rule, str):
        return rule in ended or rule not in names
    return elapsed_s >= float(rule)


def run_locusts(jobs: list[LocustJob], env: dict[str, str], verbose: bool = False,
                progress_every_s: float = 10.0) -> list[LocustRun | None]:
    """Run Locust processes, each when its `start_after` says, and wait for all; on Ctrl-C send each running
    one SIGTERM so they still write their reports, and start no more (those come back None). A process
    running 90 s past its run time is stopped the same way."""
    processes: list[subprocess.Popen | None] = [None] * len(jobs)
    logs: list = [None] * len(jobs)
    deadlines = [0.0] * len(jobs)
    job_started = [0.0] * len(jobs)
    interrupted = [False] * len(jobs)
    names = {job.name for job in jobs}
    started = time.monotonic()
    next_progress = started + progress_every_s

    def running(i: int) -> bool:
        return processes[i] is not None and processes[i].poll() is None

    try:
        while True:
            now = time.monotonic()
            ended = {job.name for job, p in zip(jobs, processes) if p is not None and p.poll() is not None}
            for i, job in enumerate(jobs):
                if processes[i] is None and _due(job, now - started, ended, names):
                    processes[i], logs[i] = _start(job, env, verbose)
                    job_started[i], deadlines[i] = now, now + job.total_s + 90
            if not any(p is None or p.poll() is None for p in processes):
                break
            time.sleep(0.2)
            now = time.monotonic()
            if now >= next_progress and not verbose:
                for i, job in enumerate(jobs):
                    if running(i):
                        print(_progress(job, job_started[i]), flush=True)
                next_progress = now + progress_every_s
            for i in range(len(jobs)):
                if running(i) and now > deadlines[i]:
                    print(f"  {jobs[i].name}: locust did not stop in time; stopping it", flush=True)
                    processes[i].send_signal(signal.SIGTERM)
                    deadlines[i] = now + 30
                    interrupted[i] = True
    except KeyboardInterrupt:
        print("\n  interrupted: stopping Locust and writing the partial report…", flush=True)
        for i in range(len(jobs)):
            if running(i):
                interrupted[i] = True
                processes[i].send_signal(signal.SIGTERM)
    outcomes: list[LocustRun | None] = []
    for job, process, log_file, was_interrupted in zip(jobs, processes, logs, interrupted):
        if process is None:
            outcomes.append(None)
            continue
        try:
            process.wait(timeout=40)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()
        log_file.close()
        rename_csvs(job.run_dir)
        outcomes.append(LocustRun(process.returncode, was_interrupted, job.run_dir / "locust.log"))
    return outcomes


def _start(job: LocustJob, env: dict[str, str], verbose: bool):
    """Start one job's Locust (its output to its locust.log unless verbose) -> (process, log file)."""
    if job.title:
        print(f"voiceload: {job.title}", flush=True)
    job.run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(job.run_dir / "locust.log", "wb")
    process = subprocess.Popen(job.command, stdout=None if verbose else log_file,
                               stderr=None if verbose else subprocess.STDOUT, cwd=REPO_ROOT, env=env,
                               start_new_session=True)
    return process, log_file


def rename_csvs(run_dir: Path) -> None:
    for suffix, name in CSV_NAMES.items():
        source = run_dir / f"{CSV_PREFIX}_{suffix}.csv"
        if source.exists():
            source.replace(run_dir / name)


def locust_env(argv: list[str], settings: Settings, stack: LocalStack | None) -> dict[str, str]:
    """The environment of the Locust processes: the command for the report, and the local stack's services."""
    env = dict(os.environ, VOICELOAD_COMMAND=shlex.join(["run_load_tests.py", *argv]), PYTHONUNBUFFERED="1")
    if settings.insecure:
        env["VOICELOAD_INSECURE"] = "1"
    if stack is not None:  # backend users load the local stack's services unless told otherwise
        if not settings.redis_url:
            env["REDIS_URL"] = stack.redis_url
        if not settings.speech_host and not settings.speech_key:
            env["SPEECH_HOST"] = stack.base_url.replace("http://", "ws://")
        if not settings.openai_endpoint:  # the reference target serves an OpenAI-compatible /v1 of its own
            env["OPENAI_ENDPOINT"] = stack.base_url + "/v1"
        if stack.cosmos is not None and not settings.cosmos_endpoint:
            env["COSMOS_ENDPOINT"], env["COSMOS_KEY"] = stack.cosmos.endpoint, stack.cosmos.key
    return env
