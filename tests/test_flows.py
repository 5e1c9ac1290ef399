"""Integration flows end to end: real headless Locust (a subprocess: importing Locust inside pytest breaks
SSL) running ConsultationUser (tests/flows_locustfile.py) against the local stack's reference target."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from orchestrator.local_stack import REPO_ROOT
from scenarios.catalog import PRIORITIES, load_catalog
from target.agent_audio import choose_reply, load_agent_clips
from target.recognizer import reply_topic
from target.settings import DEFAULT_MANIFEST
from audio.fixtures import clip_by_id

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

TURN_TIMEOUT_MS = 8000  # settings.turn_timeout_s: the hard limit for an audible answer


def run_flows(host: str, tmp_path: Path, users: int, env: dict[str, str] | None = None) -> tuple[dict, dict, Path, str]:
    """Every user starts one flow at once; -t ends the run before any could start a second, and
    --stop-timeout lets the started flows finish. -> (report.json, exact counters, call log, Locust's output)."""
    call_log = tmp_path / "calls.jsonl"
    samples = tmp_path / "samples.json"
    command = [sys.executable, "-m", "locust", "-f", "tests/flows_locustfile.py", "ConsultationUser", "--headless",
               "--host", host, "-u", str(users), "-r", str(users), "-t", "4s", "--stop-timeout", "45", "--only-summary",
               "--results-dir", str(tmp_path), "--run-id", "flows", "--samples-file", str(samples), "--call-log", str(call_log)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOICELOAD_")}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env={**clean, **(env or {})})
    report_path = tmp_path / "flows" / "report.json"
    assert report_path.is_file(), done.stderr[-3000:]
    counters = json.loads(samples.read_text())["samples"]["counters"]
    return json.loads(report_path.read_text()), counters, call_log, done.stdout + done.stderr


def flow_rows(report: dict) -> dict[str, dict]:
    return {row["name"]: row for row in report["requests"] if row["type"] == "flow"}


@pytest.mark.priority  # the turns' timing on the wire, to within tens of milliseconds
def test_whole_scenarios_complete_per_priority(start_stack, tmp_path):
    stack = start_stack()
    users = 12
    report, counters, call_log, _ = run_flows(stack.base_url, tmp_path, users)
    catalog = load_catalog()
    priority_of = {s.id: s.priority for s in catalog.scenarios}

    # one Locust request event per flow, none failed; every priority ran several whole scenarios
    rows = flow_rows(report)
    assert sum(r["count"] for r in rows.values()) == users and sum(r["failures"] for r in rows.values()) == 0, rows
    assert set(rows) <= set(priority_of) and all(r["p50"] > 5000 for r in rows.values())  # whole multi-turn calls
    assert counters["flows_completed"] == users and counters.get("flows_failed", 0) == 0, counters
    for priority in PRIORITIES:
        ran = sum(r["count"] for name, r in rows.items() if priority_of[name] == priority)
        assert counters[f"flows_completed[{priority}]"] == ran >= 3, (priority, counters)
    assert counters["calls_completed"] == users and counters.get("calls_failed", 0) == 0

    # every turn timed, overall and per priority, with exact percentiles in report.json
    metrics = report["metrics"]
    turns = {s.id: len(s.turns) for s in catalog.scenarios}
    expected_turns = sum(turns[name] * r["count"] for name, r in rows.items())
    assert metrics["voice_loop"]["count"] == expected_turns and metrics["voice_loop"]["failures"] == 0
    per_priority = [metrics[f"voice_loop[{p}]"] for p in PRIORITIES]
    assert sum(m["count"] for m in per_priority) == expected_turns
    for m in per_priority:
        assert 200 < m["p50"] <= m["p95"] <= m["p99"] <= m["max"] < TURN_TIMEOUT_MS, m
    emergency_slo = next(s for s in report["slo"] if s["metric"] == "voice_loop[emergency]")
    assert emergency_slo["observed"] == metrics["voice_loop[emergency]"]["p95"] and emergency_slo["target"] == 700
    assert metrics["barge_in"]["count"] >= 2 and counters["dtmf_sent"] >= 2  # the scenarios' interruptions and keys

    # browser flows checked the agent's words; the call's metrics were fetched after every flow
    assert counters["flow_keywords_checked"] >= 8, counters
    requests = {(r["type"], r["name"]): r for r in report["requests"]}
    assert requests[("GET", "call_metrics")]["count"] == users and requests[("GET", "call_metrics")]["failures"] == 0

    # the target's ground truth of every call: the scenario's think times, interruptions and keys happened,
    # and each turn was answered relevantly (the reply the rules pick for what was said)
    clips = load_agent_clips(DEFAULT_MANIFEST, 40)
    by_clips = {tuple(t.clip for t in s.turns): s for s in catalog.scenarios}
    calls = [json.loads(line) for line in call_log.read_text().splitlines()]
    assert len(calls) == users and {c["protocol"] for c in calls} == {"acs", "browser"}
    for call in calls:
        scenario = by_clips[tuple(t["clip"] for t in call["turns"])]
        truth = httpx.get(f"{stack.base_url}/api/v1/metrics/session/{call['call_id']}", timeout=5).json()
        served = truth["turns"]
        assert len(served) == len(scenario.turns), call
        digits = [t.dtmf for t in scenario.turns if t.dtmf] if call["protocol"] == "acs" else []
        assert truth["dtmf"] == digits
        for number, (spec, turn) in enumerate(zip(scenario.turns, served), start=1):
            clip = clip_by_id(spec.clip)
            assert turn["transcript"] == clip.text
            assert turn["agent_clip"] == choose_reply(clips, number, reply_topic(clip.text)).id
            if number == 1:
                continue
            previous = served[number - 2]
            if spec.barge_in_after_ms is not None:
                assert previous["barge_in_ms"] is not None, (scenario.id, number)
                continue
            # reply over (0.6 s without agent audio) + this turn's think time + the clip's lead-in breath
            gap = turn["speech_start_ms"] - previous["last_audio_sent_ms"]
            expected = 600 + (spec.think_time_ms if spec.think_time_ms is not None else 300) + clip.speech_start_ms
            assert expected - 40 <= gap <= expected + 100, (scenario.id, number, gap, expected)


def test_a_flow_fails_when_the_reply_lacks_its_keywords(start_stack, tmp_path):
    scenarios = tmp_path / "wrong.yaml"
    scenarios.write_text("scenarios:\n"
                         "  - id: refill_expects_ambulance\n    priority: routine\n    weight: 1\n    turns:\n"
                         "      - clip: caller_refill\n        expect: [pharmacy]\n"
                         "      - clip: caller_pharmacy_main_street\n        think_time_ms: 200\n        expect: [ambulance]\n")
    stack = start_stack()
    # auto channel: flows 0 and 1 on the phone socket (no text to check), flow 2 on the browser socket
    report, counters, _, output = run_flows(stack.base_url, tmp_path, 3, env={"VOICELOAD_SCENARIOS": str(scenarios)})
    row = flow_rows(report)["refill_expects_ambulance"]
    assert row["count"] == 3 and row["failures"] == 1, row
    assert counters["flows_completed"] == 2 and counters["flows_failed"] == counters["flows_failed[routine]"] == 1
    # the call was answered throughout, but a consultation whose checks fail is a failed call for its caller
    assert counters["calls_completed"] == 2 and counters["calls_failed"] == counters["calls_failed_checks"] == 1
    errors = [e["message"] for e in report["errors"] if e["kind"] == "flow"]
    assert len(errors) == 1 and "refill_expects_ambulance (browser): turn 2: the agent's reply lacks 'ambulance'" in errors[0]
    assert "pharmacy" in errors[0] and "heard 'Please send it to the pharmacy on Main Street.'" in errors[0], errors
    # Locust's own error report shows the flow's request event with its failure reason
    assert "flow refill_expects_ambulance: FlowFailure(\"turn 2: the agent's reply lacks 'ambulance'" in output, output[-2000:]
