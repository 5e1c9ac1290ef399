"""The verdict says what a caller of *any* agent experienced: voiceload against tests/fixture_agent.py, an agent
that shares no code with it and serves only health, start-call and one media socket per protocol.

Five agents (healthy, never answers, answers every other turn, answers after 2.5 s, drops every socket after
3 s), each run with the quick suite (shortened, groups at once) and with --test-type throughput, on the ACS
(artagent-v1) and Twilio (twilio-media) profiles. The runs share this machine with other tests, so their YAML
gives the generator's frame lateness a wider limit (its health is not under test here) and voice_loop a
1000 ms target: the healthy agent answers in about 550 ms, the slow one in about 2.9 s.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import FixtureAgent, latest_report, run_cli

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

MODES = ("healthy", "silent", "every_other", "slow", "drops")
PROFILES = ("artagent-v1", "twilio-media")
RUNS = {"quick": ["-t", "8s", "--parallel"],
        # two turns per call fit in 14 s with a 4 s turn timeout, so every other turn is judged, not hung up on
        "throughput": ["--test-type", "throughput", "-n", "2", "-d", "14"]}
CONFIG = """
turn_timeout_s: 4
slo:
  - {metric: voice_loop, stat: p95, op: "<=", target: 1000}
  - {metric: "voice_loop[emergency]", stat: p95, op: "<=", target: 1000}
thresholds: {generator_lateness_p99_ms: 60, generator_cpu_percent: 100, generator_cpu_time_fraction: 1}
"""


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    logs = tmp_path_factory.mktemp("agents")
    started = {mode: FixtureAgent(mode, logs / f"{mode}.log") for mode in MODES}
    yield started
    for agent in started.values():
        agent.stop()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "voiceload.yaml"
    path.write_text(CONFIG)
    return path


def run_against(agent: FixtureAgent, profile: str, kind: str, config, tmp_path) -> tuple[int, str, dict]:
    result = run_cli(["--host", agent.url, "--profile", profile, "--config", str(config), "--results-dir", str(tmp_path),
                      *RUNS[kind]], timeout=240)
    output = result.stdout + result.stderr
    assert (tmp_path / "latest" / "report.json").is_file(), output[-3000:]
    return result.returncode, output, latest_report(tmp_path)


def slo(report: dict, metric: str) -> dict:
    return next(entry for entry in report["slo"] if entry["metric"] == metric)


@pytest.mark.parametrize("kind", RUNS)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode", MODES)
def test_the_verdict_says_what_a_caller_of_this_agent_got(agents, config, tmp_path, mode, profile, kind):
    code, output, report = run_against(agents[mode], profile, kind, config, tmp_path)
    summary, messages = report["summary"], "\n".join(report["summary"]["messages"])
    capabilities = {c["name"]: c["status"] for c in report["capabilities"]}
    # what this agent lacks is found at preflight and listed, never counted as the agent's errors
    assert capabilities["health"] == capabilities["start_call"] == capabilities["media_ws"] == "found", capabilities
    assert {capabilities[name] for name in ("redis", "llm", "speech", "cosmos")} == {"not configured"}
    if profile == "artagent-v1":
        assert {capabilities[name] for name in ("browser_ws", "relay_ws", "inbound", "callbacks", "call_metrics")} == {"missing"}
    else:
        assert capabilities["docs"] == "missing"
    assert not [r for r in report["requests"] if r["failures"] and r["type"] in ("GET", "POST", "relay", "openai")], \
        report["requests"]
    if kind == "quick":
        assert "not run: 1 LLM user: llm not configured" in output
        assert [g["name"] for g in report["run"]["groups"]] == ["api", "websocket", "integration"]
        if profile == "artagent-v1":
            assert "not run: 1 relay listener: relay_ws missing" in output and "1 browser caller calls by phone" in output
    assert summary["success_basis"] == "calls" and summary["calls_ended"] > 0, summary

    if mode == "healthy":
        assert code == 0 and summary["verdict"] == "pass", output[-3000:]
        assert summary["success_rate"] == 100.0 and summary["turns_unanswered"] == 0
        assert "not measured in this run" in output and "verdict PASS" in output
    else:
        assert code == 1 and summary["verdict"] == "fail", output[-3000:]
    if mode == "silent":
        assert summary["success_rate"] == 0.0 and summary["turns_answered"] == 0 and summary["calls_completed"] == 0
        voice_loop = slo(report, "voice_loop")
        assert voice_loop["status"] == "fail" and voice_loop["note"].startswith("the agent answered 0 of "), voice_loop
        assert "voice_loop: the agent answered 0 of" in output
    if mode == "every_other":
        assert summary["turns_answered"] > 0 and summary["turns_unanswered"] > 0
        assert summary["call_failures"].get("unanswered", 0) > 0 and summary["success_rate"] < 80, summary
        assert "had a turn no one answered" in messages
    if mode == "slow":
        voice_loop = slo(report, "voice_loop")
        assert voice_loop["status"] == "fail" and voice_loop["observed"] > 2500, voice_loop
        assert "voice_loop p95" in messages and summary["success_rate"] == 100.0
    if mode == "drops":
        assert summary["call_failures"].get("dropped", 0) == summary["calls_failed"] > 0, summary
        assert "dropped their socket" in messages and "of WebSocket connections dropped" in messages
    if kind == "throughput":
        test = report["test"]
        assert test["calls_started"] == 2 and test["call_success_rate"] == (100.0 if mode in ("healthy", "slow") else 0.0), test
        assert report["run"]["groups"][0]["users"] == 2 and "(2 users, calls " in " ".join(output.split())  # real users


def test_a_required_capability_the_agent_lacks_stops_the_run_at_preflight(agents, tmp_path):
    result = run_cli(["--host", agents["healthy"].url, "--require", "media_ws,relay_ws", "--results-dir", str(tmp_path)])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "relay_ws missing" in result.stderr and "media_ws" not in result.stderr.split("lacks")[1].split(":")[0]
    assert not (tmp_path / "latest").exists()  # no load started
    bad = run_cli(["--host", agents["healthy"].url, "--require", "teleport", "--results-dir", str(tmp_path)])
    assert bad.returncode == 2 and "--require teleport: no such capability" in bad.stderr


def test_an_agent_without_the_profiles_media_socket_is_refused_at_preflight(agents, tmp_path):
    """Pointed at the wrong profile, voiceload would otherwise drop every caller and pass on the API alone."""
    result = run_cli(["--host", agents["healthy"].url, "--profile", "rtmedagent", "--results-dir", str(tmp_path)])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no caller can reach the agent with profile rtmedagent" in result.stderr


def test_an_api_only_run_reads_the_request_success_rate_labelled_so(agents, tmp_path):
    result = run_cli(["--host", agents["healthy"].url, "--group", "api", "-t", "4s", "--results-dir", str(tmp_path)])
    report = latest_report(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["summary"]["success_basis"] == "requests" and report["summary"]["success_rate"] == 100.0
    assert "request success 100.0% (no calls in this run)" in result.stdout
    assert json.loads((tmp_path / "latest" / "report.json").read_text())["summary"]["calls_started"] == 0
