"""run_load_tests.py end to end: real local stack, real Locust, real sockets; exit codes and reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port
from tests.conftest import calls_running, latest_report, run_cli

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

SECRETS = {"OPENAI_API_KEY": "sk-voiceload-fake-secret-1", "COSMOS_KEY": "fake-cosmos-key-2==", "SPEECH_KEY": "fake-speech-key-3"}
# a Speech key without a region means Azure Speech half-configured: the quick run then uses the local stand-in
QUICK_SECRETS = {k: v for k, v in SECRETS.items() if k != "SPEECH_KEY"}


@pytest.mark.priority  # the newcomer's run must pass, generator health included
def test_quick_run_on_local_stack_writes_full_report(tmp_path):
    result = run_cli(["-t", "8s", "--turns-per-call", "1", "--results-dir", str(tmp_path)], env=QUICK_SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert report["schema"] == "voiceload.report/1"
    # the three groups ran one after another, each in its own Locust process, merged into one report
    groups = report["run"]["groups"]
    assert [g["name"] for g in groups] == ["api", "websocket", "backend", "integration"] and report["run"]["parallel"] is False
    assert all(g["exit_code"] == 0 for g in groups)
    assert groups[0]["started_at"] <= groups[1]["started_at"] <= groups[2]["started_at"] <= groups[3]["started_at"]
    for metric in ("voice_loop", "ws_handshake", "ws_ping_rtt", "api_response_time", "frame_send_lateness",
                   "redis_hset", "redis_pubsub_delivery", "llm_ttft", "stt_first_partial", "stt_final", "tts_first_byte",
                   "cosmos_upsert"):
        summary = report["metrics"][metric]
        assert summary["count"] > 0 and summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"], metric
    slo = {s["metric"]: s for s in report["slo"]}
    assert slo["voice_loop"]["status"] in ("pass", "miss") and slo["voice_loop"]["observed"] == report["metrics"]["voice_loop"]["p95"]
    # whole consultations: per-priority voice loops, and every flow that started finished
    summary = report["summary"]
    assert summary["flows_completed"] >= 3 and summary["flows_failed"] == 0, summary
    assert any(name.startswith("voice_loop[") for name in report["metrics"]), sorted(report["metrics"])
    for metric in ("llm_ttft", "tts_first_byte", "stt_final", "redis_hset", "cosmos_upsert"):  # backend SLOs judged too
        assert slo[metric]["status"] == "pass" and slo[metric]["observed"] == report["metrics"][metric]["p95"], slo[metric]
    assert report["summary"]["verdict"] in ("pass", "warn") and report["summary"]["calls_started"] > 0
    assert report["run"]["suite"] == "quick" and report["run"]["profile"] == "artagent-v1"
    # the reference target serves everything its profile names, and the local stack configures every backend
    capabilities = {c["name"]: c["status"] for c in report["capabilities"]}
    assert capabilities == {**{name: "found" for name in capabilities}, "docs": "not configured"}, capabilities
    assert summary["success_basis"] == "calls" and summary["success_rate"] == 100.0 and "not run:" not in result.stdout
    run_dir = (tmp_path / "latest").resolve()
    for name in ("report.html", "junit.xml", "stats.csv", "stats_history.csv", "failures.csv", "locust.log"):
        assert (run_dir / name).is_file(), name
    stats = (run_dir / "stats.csv").read_text()
    assert "start_call" in stats and "voice_loop" in stats and "llm_ttft" in stats  # every group's rows
    resources = report["resources"]  # the local stack's processes and the generator, sampled with psutil
    assert {"target", "redis", "cosmos"} <= set(resources["target"]) and resources["generator"]["cpu_max_percent"] > 0
    assert resources["target"]["target"]["rss_max_mb"] > 10 and len(resources["series"]) > 5
    for group in ("api", "websocket", "backend", "integration"):
        assert (run_dir / group / "report.json").is_file() and (run_dir / group / "stats.csv").is_file(), group
    # the summary table the newcomer sees
    assert re.search(r"voice_loop\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+p95 <= 700", result.stdout)
    # secrets given in the environment never reach any output
    outputs = [p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()] + [result.stdout, result.stderr]
    for secret in QUICK_SECRETS.values():
        assert not any(secret in text for text in outputs), secret


def test_the_larger_suites_run_every_group_with_their_user_counts(tmp_path):
    """Each suite's mix, shortened with -t; all groups at once, both suites side by side, to keep the test short."""
    from orchestrator.suites import SUITES

    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    suites = ("standard", "comprehensive")
    runs = {suite: subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "--test-suite", suite, "-t", "5s",
                                     "--parallel", "--turns-per-call", "1", "--results-dir", str(tmp_path / suite)],
                                    cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for suite in suites}
    try:
        outputs = {suite: run.communicate(timeout=240)[0] for suite, run in runs.items()}
    finally:
        for run in runs.values():
            run.kill()
    for suite in suites:
        # five seconds of a long suite, next to another run: the mix is under test, not the SLOs
        assert runs[suite].returncode in (0, 1, 4), outputs[suite]
        report = latest_report(tmp_path / suite)
        plan = SUITES[suite]
        users = {g["name"]: g["users"] for g in report["run"]["groups"]}
        assert users == {"api": plan.api_users, "websocket": plan.voice_users + plan.browser_users + plan.relay_users,
                         "backend": 4 * plan.backend_users, "integration": plan.integration_users}, users
        assert report["run"]["suite"] == suite and report["run"]["parallel"] is True
        assert all(g["exit_code"] in (0, 1) and g["run_time_s"] == 5 for g in report["run"]["groups"]), report["run"]["groups"]
        for metric in ("api_response_time", "ws_handshake"):
            assert report["metrics"][metric]["count"] > 0, (suite, metric)
        # the backend users start one after another at the suite's spawn rate: some of them in a few seconds
        assert any(name.startswith(("redis_", "cosmos_", "llm_", "tts_")) for name in report["metrics"]), sorted(report["metrics"])
        run_dir = (tmp_path / suite / "latest").resolve()
        for name in ("report.json", "report.html", "junit.xml", "stats.csv", "stats_history.csv", "failures.csv", "exceptions.csv"):
            assert (run_dir / name).is_file(), (suite, name)


def test_a_slow_target_fails_its_slo_with_exit_1(start_stack, tmp_path):
    stack = start_stack("--latency-mode", "fixed", "--llm-ttft-ms", "1500", "--llm-ttft-p95-ms", "1500")
    result = run_cli(["--host", stack.base_url, "--group", "websocket", "-u", "2", "-t", "10s", "--turns-per-call", "1",
                      "--results-dir", str(tmp_path)])
    assert result.returncode == 1, result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert report["summary"]["verdict"] == "fail"
    voice = next(s for s in report["slo"] if s["metric"] == "voice_loop")
    assert voice["status"] == "fail" and voice["observed"] > 1500


def test_twilio_profile_with_parallel_groups_of_two_processes_each(start_stack, tmp_path):
    stack = start_stack()
    result = run_cli(["--host", stack.base_url, "--profile", "twilio-media", "-u", "3", "-t", "10s", "--processes", "2",
                      "--parallel", "--backend-users", "0", "--integration-users", "0", "--turns-per-call", "1", "--results-dir", str(tmp_path)])
    assert result.returncode in (0, 4), result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert report["run"]["profile"] == "twilio-media" and report["run"]["workers"] == 2
    groups = {g["name"]: g for g in report["run"]["groups"]}
    assert set(groups) == {"api", "websocket"} and report["run"]["parallel"] is True
    started = [dt.datetime.fromisoformat(g["started_at"]) for g in groups.values()]
    assert abs((started[0] - started[1]).total_seconds()) < 5  # at once, not one after another
    assert report["summary"]["calls_failed"] == 0 and report["summary"]["relay_events"] == 0
    assert report["metrics"]["voice_loop"]["count"] > 0
    assert any(r["name"] == "start_call" and r["type"] == "POST" for r in report["requests"])


def test_unreachable_host_exits_3_in_bounded_time(tmp_path):
    started = time.monotonic()
    result = run_cli(["--host", f"http://127.0.0.1:{free_port()}", "--results-dir", str(tmp_path)], timeout=30)
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - started < 15  # the preflight gives up after 8 s; the rest is starting Python on a busy machine
    assert "unreachable" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("args, env, message", [
    (["-u", "0"], {}, "must be above 0"),
    (["-t", "soon"], {}, "invalid duration"),
    (["--profile", "nope"], {}, "unknown profile"),
    (["--test-suite", "huge"], {}, "invalid choice"),
    (["--host", "ftp://example"], {}, "api_base_url"),
    (["-u", "500"], {"MAX_USERS": "100"}, "MAX_USERS"),
    ([], {"TEST_DURATION": "-3"}, "test_duration"),
    (["--group", "calls"], {}, "invalid choice"),
    (["--env", "staging"], {}, "invalid choice"),
    (["--test-type", "load", "--increment", "5", "--max-batch", "2"], {}, "must not exceed --max-batch"),
    (["--test-type", "resilience", "--error-rate", "1.5"], {}, "--error-rate must be within 0..1"),
    (["--group", "backend", "--backend-users", "0"], {}, "has no users"),
    (["--test-type", "soak"], {}, "invalid choice: 'soak'"),
    (["--api-users", "-1"], {}, "must be 0 or more"),
    (["--test-type", "throughput", "-n", "-3"], {}, "argument -n/--num-calls"),
    (["--host", "http://"], {}, "not a http:///https:// URL"),
    (["--config", "/nonexistent/slo.yaml"], {}, "cannot read config file"),
])
def test_bad_input_exits_2_before_anything_starts(tmp_path, args, env, message):
    result = run_cli([*args, "--results-dir", str(tmp_path / "r")], timeout=30, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr  # one clear line
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_an_slo_file_that_is_not_valid_yaml_exits_2(tmp_path):
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text("slo: [unclosed\n")
    result = run_cli(["--config", str(slo_file), "--results-dir", str(tmp_path / "r")], timeout=30)
    assert result.returncode == 2 and result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr


def test_unwritable_results_dir_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(["--results-dir", str(blocker / "results")], timeout=30)
    assert result.returncode == 2 and "not writable" in result.stderr


def test_print_config_redacts_secrets():
    result = run_cli(["--print-config"], timeout=30, env={**SECRETS, "REDIS_URL": "redis://:hunter2@cache:6379"})
    assert result.returncode == 0
    assert "***" in result.stdout and "hunter2" not in result.stdout
    assert not any(secret in result.stdout for secret in SECRETS.values())


def test_sigterm_mid_run_still_writes_the_partial_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "-t", "12s", "--backend-users", "0", "--integration-users", "0",
                                "--turns-per-call", "1", "--progress-every", "5", "--results-dir", str(tmp_path), "--output", str(tmp_path / "out.json")],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in process.stdout:  # the websocket group's first progress line: its callers are mid-call
            seen.append(line)
            if calls_running(line):
                process.send_signal(signal.SIGTERM)
                break
        output = "".join(seen) + process.communicate(timeout=90)[0]
    finally:
        process.kill()
    report = latest_report(tmp_path)
    assert report["run"]["interrupted"] is True, output
    assert [g["name"] for g in report["run"]["groups"]] == ["api", "websocket"]
    assert report["metrics"]["api_response_time"]["count"] > 0 and report["metrics"]["ws_handshake"]["count"] > 0
    assert json.loads((tmp_path / "out.json").read_text()) == report
    assert json.loads((tmp_path / "load_test_report_latest.json").read_text()) == report
    assert len(list(tmp_path.glob("load_test_report_2*.json"))) == 1


@pytest.mark.priority  # Locust's 1 s worker heartbeats: a starved worker would be "lost" without being killed
def test_a_worker_killed_mid_run_is_named_and_the_run_finishes_with_the_rest(start_stack, tmp_path):
    stack = start_stack()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "--host", stack.base_url, "--group",
                                "websocket", "-u", "4", "-t", "14s", "--workers", "2", "--turns-per-call", "1", "--progress-every", "5",
                                "--results-dir", str(tmp_path)],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, killed = [], None
    try:
        for line in process.stdout:
            seen.append(line)
            if calls_running(line) and killed is None:  # 5 s in: calls are running
                master = next(p for p in psutil.Process(process.pid).children() if "locust" in " ".join(p.cmdline()))
                killed = master.children()[0]
                killed.kill()
        process.wait(timeout=120)
    finally:
        process.kill()
    output = "".join(seen)
    assert killed is not None, output
    report = latest_report(tmp_path)
    lost = report["run"]["workers_lost"]
    # killed at the first progress line: seconds into the run, however long this busy machine took to start it
    assert len(lost) == 1 and lost[0]["group"] == "websocket" and 1 <= lost[0]["lost_at_s"] <= 14, (lost, output)
    assert report["run"]["workers"] == 2 and not report["run"]["interrupted"]
    assert any(m.startswith(f"worker {lost[0]['id']} was lost") for m in report["summary"]["messages"])
    assert report["metrics"]["voice_loop"]["count"] > 0 and report["summary"]["calls_completed"] > 0


def test_remote_workers_join_each_group_and_leave_when_the_run_is_over(start_stack, tmp_path):
    stack = start_stack()
    port = free_port()  # group 1 listens here, group 2 on the next port
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers = [subprocess.Popen([sys.executable, str(REPO_ROOT / "run_load_tests.py"), "worker", "--master-host", "127.0.0.1",
                                 "--master-port", str(port), "--wait", "4"], cwd=REPO_ROOT, env=env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    try:
        result = run_cli(["--host", stack.base_url, "--backend-users", "0", "--integration-users", "0", "-u", "4", "-t", "6s", "--turns-per-call", "1",
                          "--expect-workers", "2", "--master-bind-port", str(port), "--results-dir", str(tmp_path)], timeout=200)
        for worker in workers:
            worker.wait(timeout=60)  # they end by themselves once no master comes
    finally:
        for worker in workers:
            worker.kill()
    outputs = [log.read_text() for log in logs]
    # the topology is under test, not the SLOs: a few dozen samples while workers start can miss them
    assert result.returncode in (0, 1, 4), result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert [g["name"] for g in report["run"]["groups"]] == ["api", "websocket"] and report["run"]["workers"] == 2
    assert report["metrics"]["api_response_time"]["count"] > 0 and report["metrics"]["voice_loop"]["count"] > 0
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0 and "done after 2 group(s)" in output, output


def test_yaml_run_settings_are_honoured_below_the_environment_and_the_command_line(tmp_path):
    """turns_per_call, users, spawn_rate and test_duration in --config win over the suite's, lose to the
    environment and the command line; --print-config shows what will really be used."""
    config = tmp_path / "run.yaml"
    config.write_text("turns_per_call: 5\nusers: 12\nspawn_rate: 4\ntest_duration: 33\n")

    def printed(*args: str, env: dict | None = None) -> dict:
        result = run_cli(["--config", str(config), "--print-config", *args], timeout=30, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    from_yaml = printed()
    plan = from_yaml["run_plan"]
    assert (plan["turns_per_call"], plan["spawn_rate"], from_yaml["users"]) == (5, 4.0, 12)
    assert {g["run_time_s"] for g in plan["groups"]} == {33}
    assert sum(plan["groups"][0]["users"].values()) + sum(plan["groups"][1]["users"].values()) == 12  # api + callers
    from_env = printed(env={"TEST_DURATION": "20"})
    assert {g["run_time_s"] for g in from_env["run_plan"]["groups"]} == {20}
    from_cli = printed("--turns-per-call", "2", "-t", "9s", "-u", "6", "-r", "1", env={"TEST_DURATION": "20"})
    assert (from_cli["run_plan"]["turns_per_call"], from_cli["run_plan"]["spawn_rate"], from_cli["users"]) == (2, 1.0, 6)
    assert {g["run_time_s"] for g in from_cli["run_plan"]["groups"]} == {9}
    suite = printed("--test-suite", "standard", env={})
    config.write_text("")
    assert printed("--test-suite", "standard")["run_plan"]["turns_per_call"] == 3  # the suite's, when nothing says otherwise
    assert suite["run_plan"]["turns_per_call"] == 5


def test_help_explains_every_option_cleanly():
    result = run_cli(["--help"], timeout=30)
    assert result.returncode == 0 and "option_strings" not in result.stdout  # a stray % broke argparse's formatting
    for option in ("--require", "--capacity-full", "--batch-size", "--find-capacity", "--test-type"):
        assert option in result.stdout
    assert ">= 80% of its calls succeeding" in " ".join(result.stdout.split())
