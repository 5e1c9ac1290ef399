"""The numbers users gate launches on: against the reference target in fixed mode (delays known), the
measured voice_loop, barge_in and stt_final equal what the target's own per-turn ground truth implies,
with one Locust process and with two workers; and the two-worker report equals the exact merge of
everything the workers shipped to the master."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from metrics.histogram import LatencyHistogram
from metrics.recorder import MetricsRecorder
from orchestrator.local_stack import REPO_ROOT
from reporting.report import metric_summaries
from audio.pcm import DEFAULT_SPEECH_RMS, frame_bytes, pcm16_rms, split_frames
from audio.fixtures import clip_by_id

pytestmark = pytest.mark.exclusive  # compares latencies with ground truth to the millisecond: alone

EOT_SILENCE_MS = 300
FRAME_MS = {"acs": 20, "twilio": 20, "browser": 32}
FIXED = ["--latency-mode", "fixed", "--eot-silence-ms", str(EOT_SILENCE_MS), "--stt-final-ms", "60",
         "--llm-ttft-ms", "150", "--tts-first-byte-ms", "50", "--stt-partial-ms", "200"]


def eot_offset_ms(protocol: str) -> int:
    """End of turn is detected on arrival of the frame completing the silence; that frame is due
    (frames needed - 1) frame lengths after the scheduled end of speech."""
    frame = FRAME_MS[protocol]
    return (math.ceil(EOT_SILENCE_MS / frame) - 1) * frame


def run_locust(host: str, results: Path, run_id: str, processes: int, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "locust", "-f", "locustfile.py", "TelephonyCaller", "BrowserCaller", "--headless",
               "--host", host, "-u", "4", "-r", "4", "-t", "16s", "--stop-timeout", "15", "--only-summary",
               "--results-dir", str(results), "--run-id", run_id, "--turns-per-call", "3", "--barge-in-rate", "1.0"]
    if processes > 1:
        command += ["--processes", str(processes)]
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, timeout=120, env={**os.environ, **env})
    return json.loads((results / run_id / "report.json").read_text())


def first_audible_ms(clip_id: str, frame_ms: int) -> int:
    """Where the agent's first audible frame starts in its reply clip, on the target's frame grid."""
    clip = clip_by_id(clip_id)
    frames = split_frames(clip.pcm, frame_bytes(clip.sample_rate, frame_ms))
    return next(i for i, f in enumerate(frames) if pcm16_rms(f) >= DEFAULT_SPEECH_RMS) * frame_ms


def server_truth(stack, call_id: str) -> dict | None:
    response = httpx.get(f"{stack.base_url}/api/v1/metrics/session/{call_id}", timeout=5)
    return response.json() if response.status_code == 200 else None


def paired_turns(stack, call_log: Path) -> dict[str, list[tuple[float, float]]]:
    """(measured, implied by the target's ground truth) for every turn both sides saw, per metric."""
    pairs: dict[str, list[tuple[float, float]]] = {"voice_loop": [], "barge_in": [], "stt_final": []}
    for line in call_log.read_text().splitlines():
        call = json.loads(line)
        truth = server_truth(stack, call["call_id"])
        if truth is None or len(truth["turns"]) != len(call["turns"]):
            continue  # e.g. hung up at the end of the test before the target saw the last turn
        offset = eot_offset_ms(call["protocol"])
        server = truth["turns"]
        for number, (client, turn) in enumerate(zip(call["turns"], server)):
            if client["voice_loop"] is not None and turn.get("first_audio_sent_ms") is not None:
                lead = first_audible_ms(turn["agent_clip"], truth["settings"]["agent_frame_ms"])
                implied = offset + turn["eot_to_first_audio_ms"] + lead
                pairs["voice_loop"].append((client["voice_loop"], implied))
            if client["stt_final"] is not None and turn.get("stt_final_ms") is not None:
                pairs["stt_final"].append((client["stt_final"], offset + turn["stt_final_ms"] - turn["eot_detected_ms"]))
            if client["barge_in_ms"] is not None and number > 0 and server[number - 1].get("barge_in_ms") is not None:
                # the interrupted reply's stop, from the interrupting speech's first frame
                pairs["barge_in"].append((client["barge_in_ms"], server[number - 1]["barge_in_ms"] - turn["speech_start_ms"]))
    return pairs


def percentiles(values: list[float]) -> tuple[float, float]:
    histogram = LatencyHistogram()
    histogram.record_many(values)
    return tuple(histogram.percentiles((50, 99)))


@pytest.mark.parametrize("processes", [1, 2])
def test_measured_latencies_equal_the_targets_ground_truth(start_stack, tmp_path, processes):
    stack = start_stack(*FIXED)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    call_log = tmp_path / "calls.jsonl"
    report = run_locust(stack.base_url, tmp_path, f"accuracy-{processes}", processes,
                        env={"VOICELOAD_SAMPLE_DUMP_DIR": str(dumps), "VOICELOAD_CALL_LOG": str(call_log)})
    pairs = paired_turns(stack, call_log)
    for metric, pair in pairs.items():
        assert len(pair) >= 3, (metric, pair)
        # per turn, measured minus what the target's truth implies: transport and scheduling only
        errors = [measured - implied for measured, implied in pair]
        error_p50, error_p99 = percentiles([abs(e) for e in errors])
        assert error_p50 <= 5 and error_p99 <= 10, (metric, sorted(round(e, 2) for e in errors))
    assert report["metrics"]["voice_loop"]["count"] >= len(pairs["voice_loop"])

    if processes > 1:
        assert report["run"]["workers"] == processes
        files = list(dumps.glob("worker-*.jsonl"))
        assert len(files) == processes
        merged = MetricsRecorder()
        for path in files:
            for line in path.read_text().splitlines():
                merged.absorb(json.loads(line))
        exact = metric_summaries(merged)
        for metric in ("voice_loop", "barge_in", "stt_final", "ws_handshake", "frame_send_lateness"):
            assert report["metrics"][metric] == exact[metric], metric
