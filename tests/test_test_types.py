"""Every --test-type against one local stack (short runs side by side), each with its own result fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.local_stack import REPO_ROOT

pytestmark = [pytest.mark.xdist_group("test_types"), pytest.mark.long]  # one set of runs, on one worker

RUN_TIMEOUT_S = 240
TYPES = {
    "http_basic": ["--profile", "twilio-media"],  # the framework's own agent: health and /docs
    # the seed's 2 KB every 200 ms: 256 ms of 8 kHz mu-law per chunk, so 1.28x real time
    "throughput": ["--profile", "twilio-media", "-n", "2", "-d", "5", "-c", "2", "--interval", "200"],
    "resilience": ["-n", "2", "-d", "8", "--error-rate", "1.0"],
    "load": ["--max-batch", "4", "--increment", "2", "-d", "5"],  # a call shorter than ~4 s never hears an answer
    "high_concurrency": ["-n", "3", "--batch-size", "2", "-d", "5"],
    "wave_pattern": ["--peak-calls", "4", "--num-waves", "2", "--wave-duration", "8"],
    "burst_pattern": ["--burst-size", "3", "--num-bursts", "2", "--ramp-up-ms", "200", "--rest-seconds", "2", "-d", "5"],
    "stability": ["--test-duration-minutes", "0.5", "--base-calls", "1", "--peak-calls", "3"],  # 3 phases of 10 s
    "resource_monitoring": ["-n", "2", "-d", "4", "--monitor-interval", "0.5"],
}


@dataclass
class Run:
    returncode: int | None
    output: str
    report: dict




@pytest.fixture(scope="module")
def runs(module_stack, tmp_path_factory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("types")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    started = {}
    for name, args in TYPES.items():
        log = (out / f"{name}.log").open("w")
        command = [sys.executable, str(REPO_ROOT / "run_load_tests.py"), "--host", module_stack.base_url, "--test-type", name,
                   "--turns-per-call", "1", "--results-dir", str(out / name), "--output", str(out / f"{name}.json"), *args]
        started[name] = (subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    results = {}
    for name, (process, log) in started.items():
        try:
            process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        report_path = out / f"{name}.json"
        results[name] = Run(process.returncode, (out / f"{name}.log").read_text(),
                            json.loads(report_path.read_text()) if report_path.exists() else {})
    return results


@pytest.mark.parametrize("name", list(TYPES))
def test_each_type_runs_and_writes_every_report_file(runs, name):
    run = runs[name]
    assert run.returncode in (0, 1, 4), run.output[-3000:]  # 4: on this 2-core machine all run at once
    assert run.report["run"]["test_type"] == name and run.report["test"]["type"] == name
    run_dir = Path(run.output.split("report: ")[-1].split("  ·  ")[0]).parent
    for file in ("report.json", "report.html", "junit.xml"):
        assert (run_dir / file).is_file(), file
    assert f"test {name}:" in run.output


def test_http_basic_reaches_health_and_docs(runs):
    test = runs["http_basic"].report["test"]
    assert test["requests"] == 10 and test["reachable"] == {"health": True, "docs": True}
    assert runs["http_basic"].report["summary"]["requests"] == 10


def test_load_finds_the_largest_batch_that_held(runs):
    test = runs["load"].report["test"]
    assert [b["calls"] for b in test["batches"]] == [2, 4]
    held = [b["calls"] for b in test["batches"] if b["success_rate"] is not None and b["success_rate"] >= 80]
    assert test["max_acceptable_batch"] == max(held, default=0) == 4


def test_throughput_says_how_fast_the_audio_went_against_real_time(runs):
    test = runs["throughput"].report["test"]
    assert test["audio_chunks_sent"] > 0 and test["audio_bytes_sent"] == test["audio_chunks_sent"] * 2048
    assert abs(test["real_time_ratio"] - 1.28) < 0.05 and test["pace"] == "faster than real time"
    assert test["calls_started"] >= 2


def test_resilience_counts_injected_faults_and_the_calls_that_survived_them(runs):
    test = runs["resilience"].report["test"]
    assert test["simulated_errors"] > 0 and test["simulated_errors"] == sum(test["simulated_by_kind"].values())
    assert test["calls_completed_despite_errors"] > 0


def test_high_concurrency_places_its_calls_in_batches_started_together(runs):
    run = runs["high_concurrency"]
    test = run.report["test"]
    assert test["calls_started"] == 3 and test["call_success_rate"] == 100.0 * test["calls_completed"] / 3, test
    assert [(b["batch"], b["calls"], b["calls_started"]) for b in test["batches"]] == \
        [("batch 1 (2 calls)", 2, 2), ("batch 2 (1 call)", 1, 1)], test["batches"]
    assert "up to 2 TelephonyCaller" in run.output and "(2 users, calls " in " ".join(run.output.split())  # real users


def test_call_count_types_place_exactly_their_calls_and_judge_them(runs):
    """-n calls are -n calls (one per caller), and the success rate is succeeded / started."""
    for name in ("throughput", "resilience", "resource_monitoring"):
        test = runs[name].report["test"]
        assert test["calls_started"] == 2, (name, test)
        assert test["call_success_rate"] == 100.0 * test["calls_completed"] / 2, (name, test)
        assert f"{test['calls_completed']} of 2 calls succeeded" in runs[name].output


@pytest.mark.parametrize("name, phases", [("wave_pattern", ["wave 1 peak", "wave 1 valley", "wave 2 peak", "wave 2 valley"]),
                                          ("burst_pattern", ["burst 1", "rest 1", "burst 2"]),
                                          ("stability", ["base 1", "peak 1", "base 2"])])
def test_patterns_split_the_results_by_phase(runs, name, phases):
    report = runs[name].report
    names = [p["name"] for p in report["phases"]]
    assert names[: len(phases)] == phases, names
    worst = report["test"]["worst_phase"]
    rated = [p for p in report["phases"] if p["success_rate"] is not None]
    assert worst["success_rate"] == min(p["success_rate"] for p in rated)


def test_resource_monitoring_names_processes_and_bottlenecks(runs):
    test = runs["resource_monitoring"].report["test"]
    assert isinstance(test["bottlenecks"], list) and test["generator_peaks"]["cpu_max_percent"] > 0
    assert test["parameters"]["monitor_interval"] == 0.5
