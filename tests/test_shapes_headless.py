"""Every shape in a real Locust process against the local stack (redis + reference target): headless runs
end by themselves and their users follow the shape (Locust's own --csv stats history) with the shape's
phases in report.json; in the web UI the start form builds the shape from its fields, or names a bad one.

The seven headless runs start at once (each its own process, 6-12 s of shape each; ApiUser, and
TelephonyCaller for callcenter, whose users are calls), so this file takes about a minute. They share one
local stack, started as tests/conftest.py's start_stack does but once for the module.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from orchestrator.local_stack import REPO_ROOT, LocalStack
from orchestrator.ports import free_port

pytestmark = [pytest.mark.xdist_group("shapes_headless"), pytest.mark.long]  # one set of runs, on one worker

LOCUSTFILE = "tests/shapes_locustfile.py"
RUN_TIMEOUT_S = 120  # a run whose shape never ends is killed here and fails


@dataclass(frozen=True)
class Case:
    user: str
    args: list[str]
    levels: list[int]  # the user counts the run must pass through, in order
    peak: int
    phases: list[str]
    duration_s: float


CALLCENTER_PROFILE = ",".join(["0"] * 9 + ["60", "180", "120"] + ["0"] * 12)
CASES = {
    "ramp": Case("ApiUser", ["--shape", "step", "--ramp-start-users", "1", "--ramp-increment", "2",
                             "--ramp-step-duration", "3", "--ramp-max-users", "5"],
                 [1, 3, 5], 5, ["step 1 (1 user)", "step 2 (3 users)", "step 3 (5 users)"], 9),
    "wave": Case("ApiUser", ["--shape", "wave", "--wave-peak-users", "4", "--wave-valley-users", "1", "--waves", "2",
                             "--wave-duration", "6"],
                 [4, 1, 4, 1], 4, ["wave 1 peak", "wave 1 valley", "wave 2 peak", "wave 2 valley"], 12),
    "burst": Case("ApiUser", ["--shape", "burst", "--burst-users", "3", "--bursts", "2", "--burst-ramp-up-ms", "500",
                              "--burst-hold", "4", "--burst-rest", "3"],
                  [3, 0, 3], 3, ["burst 1", "rest 1", "burst 2"], 11),
    "spike": Case("ApiUser", ["--shape", "spike", "--spike-baseline-users", "1", "--spike-users", "5",
                              "--spike-after", "3", "--spike-duration", "3", "--spike-recovery", "3"],
                  [1, 5, 1], 5, ["baseline", "spike", "recovery"], 9),
    "sustained": Case("ApiUser", ["--shape", "soak", "--sustained-users", "3", "--sustained-duration", "6"],
                      [3], 3, ["sustained (3 users)"], 6),
    "stability": Case("ApiUser", ["--shape", "stability", "--stability-base-users", "1", "--stability-peak-users", "3",
                                  "--stability-minutes", "0.2", "--stability-phase", "3"],
                      [1, 3, 1, 3], 3, ["base 1", "peak 1", "base 2", "peak 2"], 12),
    "callcenter": Case("TelephonyCaller", ["--shape", "callcenter", "--callcenter-profile", CALLCENTER_PROFILE,
                                           "--callcenter-hours", "9-12", "--callcenter-handle-time", "60",
                                           "--callcenter-duration", "12"],
                       [1, 3, 2], 3, ["hour 09 (60 calls/h)", "hour 10 (180 calls/h)", "hour 11 (120 calls/h)"], 12),
}


@dataclass
class Run:
    returncode: int | None
    log: str
    history: list[tuple[int, int]]  # (unix second, users) of Locust's Aggregated rows
    report: dict


def locust_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}


def read_history(path: Path) -> list[tuple[int, int]]:
    with path.open() as f:
        return [(int(row["Timestamp"]), int(row["User Count"])) for row in csv.DictReader(f) if row["Name"] == "Aggregated"]


def read_report(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def run_lengths(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def passes_through(levels: list[int], seen: list[int]) -> bool:
    """`levels` appear in `seen` in this order (other values may come between them)."""
    it = iter(seen)
    return all(level in it for level in levels)


def phase_names(report: dict) -> list[str]:
    return run_lengths([p["name"] for p in report.get("phases", [])])  # type: ignore[arg-type]




@pytest.fixture(scope="module")
def runs(module_stack, tmp_path_factory) -> dict[str, Run]:
    """All headless runs at once; each must quit by itself (no --run-time) within RUN_TIMEOUT_S."""
    out = tmp_path_factory.mktemp("runs")
    processes = {}
    for name, case in CASES.items():
        command = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, case.user, "--headless", "--host", module_stack.base_url,
                   "--csv", str(out / name), "--results-dir", str(out / "results"), "--run-id", name, "--only-summary",
                   *case.args]
        log = (out / f"{name}.log").open("w")
        processes[name] = (subprocess.Popen(command, cwd=REPO_ROOT, env=locust_env(), stdout=log, stderr=subprocess.STDOUT), log)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    results = {}
    for name, (process, log) in processes.items():
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()
        history_file = out / f"{name}_stats_history.csv"
        results[name] = Run(process.returncode if process.returncode >= 0 else None, (out / f"{name}.log").read_text(),
                            read_history(history_file) if history_file.exists() else [],
                            read_report(out / "results" / name / "report.json"))
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_headless_run_follows_the_shape_and_ends_by_itself(runs, name):
    case, run = CASES[name], runs[name]
    assert run.returncode == 0, run.log[-3000:]
    assert "Shape test completed" in run.log  # Locust quit because the shape ended, not for another reason
    users = [u for _, u in run.history]
    assert passes_through(case.levels, run_lengths(users)), f"users over time: {users}"
    assert max(users) == case.peak, f"users over time: {users}"
    active = [t for t, u in run.history if u > 0]
    assert case.duration_s - 2 <= active[-1] - active[0] <= case.duration_s + 3, f"history: {run.history}"
    assert phase_names(run.report) == case.phases
    assert run.report["run"]["shape"].endswith("Shape") and run.report["summary"]["requests"] > 0


def test_bad_shape_option_exits_2_with_one_line_before_starting(module_stack):
    result = subprocess.run([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "ApiUser", "--headless", "--host",
                             module_stack.base_url, "--shape", "wave", "--wave-peak-users", "2", "--wave-valley-users", "5"],
                            cwd=REPO_ROOT, env=locust_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: --wave-valley-users (5) must be below --wave-peak-users (2)" in result.stderr
    assert "Traceback" not in result.stderr and "Shape test starting" not in result.stderr


class WebUI:
    """`locust` with its web UI on a free port; on exit it gets SIGTERM (closes its CSVs, writes report.json)."""

    def __init__(self, stack: LocalStack, tmp_path: Path, *args: str) -> None:
        self.port, self.log_path = free_port(), tmp_path / "ui.log"
        command = [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1", "--web-port",
                   str(self.port), "--host", stack.base_url, "--csv", str(tmp_path / "ui"), "--results-dir",
                   str(tmp_path / "results"), "--run-id", "ui", *args]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=locust_env(), stdout=log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def __enter__(self) -> WebUI:
        return self

    def __exit__(self, *_exc) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)

    def log_tail(self) -> str:
        return self.log_path.read_text()[-2000:]

    def index(self) -> httpx.Response:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                return self.client.get("/")
            except httpx.TransportError:
                time.sleep(0.2)  # the UI is not listening yet
        raise AssertionError(f"the web UI did not come up: {self.log_tail()}")

    def state(self) -> str:
        return self.client.get("/stats/requests").json()["state"]

    def wait_until_stopped(self) -> None:
        deadline = time.monotonic() + 60
        while self.state() != "stopped" and time.monotonic() < deadline:  # the shape ends the test by itself
            time.sleep(0.5)
        assert self.state() == "stopped", self.log_tail()


def test_web_ui_start_form_builds_the_shape_from_its_fields(module_stack, tmp_path):
    """Started with --shape wave, the form's fields (shape and its options) decide what runs."""
    with WebUI(module_stack, tmp_path, "ApiUser", "--shape", "wave") as ui:
        page = ui.index()
        assert page.status_code == 200, ui.log_tail()
        for field_name in ("wave_peak_users", "callcenter_profile", "calls_per_hour_peak", "burst_ramp_up_ms"):
            assert field_name in page.text, field_name

        bad = ui.client.post("/swarm", data={"host": module_stack.base_url, "shape": "wave", "wave_peak_users": "3",
                                             "wave_valley_users": "9"}).json()
        assert bad["success"] is False
        assert bad["message"] == "--wave-valley-users (9) must be below --wave-peak-users (3)"
        assert ui.state() == "ready"

        form = {"host": module_stack.base_url, "shape": "spike", "spike_baseline_users": "1", "spike_users": "4",
                "spike_after": "2", "spike_duration": "3", "spike_recovery": "2"}
        started = ui.client.post("/swarm", data=form).json()
        assert started["success"] is True and "SpikeShape" in started["message"], started
        ui.wait_until_stopped()
    users = [u for _, u in read_history(tmp_path / "ui_stats_history.csv")]
    assert passes_through([1, 4, 1], run_lengths(users)) and max(users) == 4, f"users over time: {users}"
    report = read_report(tmp_path / "results" / "ui" / "report.json")
    assert report["run"]["shape"] == "SpikeShape"
    assert phase_names(report) == ["baseline", "spike", "recovery"]


def test_class_picker_offers_every_shape_built_from_the_form(module_stack, tmp_path):
    with WebUI(module_stack, tmp_path, "--class-picker") as ui:
        page = ui.index()
        for class_name in ("RampShape", "WaveShape", "BurstShape", "SpikeShape", "SustainedShape", "StabilityShape",
                           "CallCenterShape"):
            assert class_name in page.text, class_name
        form = {"host": module_stack.base_url, "user_classes": "ApiUser", "shape_class": "RampShape",
                "ramp_start_users": "1", "ramp_increment": "2", "ramp_step_duration": "2", "ramp_max_users": "3"}
        bad = ui.client.post("/swarm", data={**form, "ramp_max_users": "0"}).json()
        assert bad == {"success": False, "host": module_stack.base_url,
                       "message": "--ramp-max-users (0) must not be below --ramp-start-users (1)"}
        started = ui.client.post("/swarm", data=form).json()
        assert started["success"] is True and "RampShape" in started["message"], started
        ui.wait_until_stopped()
    users = [u for _, u in read_history(tmp_path / "ui_stats_history.csv")]
    assert passes_through([1, 3], run_lengths(users)) and max(users) == 3, f"users over time: {users}"
    assert phase_names(read_report(tmp_path / "results" / "ui" / "report.json")) == ["step 1 (1 user)", "step 2 (3 users)"]


def test_with_two_workers_the_shapes_end_keeps_every_call(module_stack, tmp_path):
    """Locust quits the master as soon as a headless shape ends; voiceload stops the workers gracefully
    first, so every call that started is finished and counted."""
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "TelephonyCaller", "--headless", "--host", module_stack.base_url,
               "--processes", "2", "--shape", "sustained", "--sustained-users", "4", "--sustained-duration", "10",
               "--turns-per-call", "1", "--stop-timeout", "10", "--only-summary", "--results-dir", str(tmp_path), "--run-id", "w"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=locust_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    report = read_report(tmp_path / "w" / "report.json")
    summary = report["summary"]
    assert report["run"]["workers"] == 2 and summary["calls_started"] >= 4
    assert summary["calls_completed"] == summary["calls_started"], summary
    assert phase_names(report) == ["sustained (4 users)"] and report["phases"][0]["voice_loop_count"] >= 4
