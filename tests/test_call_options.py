"""The caller options of the test types: --call-duration, --chunk-bytes/--chunk-interval-ms, --fault-rate.

Pure parts first (chunking math, speech anchors on the chunk grid, the real-time ratio, fault choice), then
short real Locust runs (a subprocess each) against the local stack.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from orchestrator.local_stack import REPO_ROOT
from protocols.acs import AcsCodec
from protocols.browser import BrowserCodec
from protocols.twilio import TwilioCodec
from target.vad import Endpointer, VadEvent
from voice.call_options import CallOptions
from audio.pcm import DEFAULT_SPEECH_RMS, frame_bytes, pcm16_rms, split_frames
from voice.audio_stream import AudioStream, chunk_span, real_time_ratio, resolve_chunking, split_chunks
from voice.call_result import (ABANDONED, ANSWERED, CHECKS_FAILED, CUT_BY_HANGUP, DROPPED, NEVER_HEARD, OTHER_FAILURE,
                               SETUP_FAILED, UNANSWERED, UNANSWERED_TURN, CallResult, Turn, call_failure)
from voice.faults import (ABRUPT_DISCONNECT, FAULT_KINDS, MALFORMED_BINARY, MALFORMED_TEXT, RECONNECT, SKIPPED_CHUNKS,
                          SKIPPED_RUN, FaultInjector, fault_rng, fault_window)
from audio.fixtures import caller_clips, clip_by_id, encoded_payloads, wire_speech_bounds

CODECS = {"acs": lambda: AcsCodec("call-1"), "twilio": lambda: TwilioCodec("CA1", "MZ1"), "browser": BrowserCodec}
EOT_SILENCE_MS = 300
FIXED = ["--latency-mode", "fixed", "--eot-silence-ms", str(EOT_SILENCE_MS), "--stt-final-ms", "60",
         "--llm-ttft-ms", "150", "--tts-first-byte-ms", "50", "--stt-partial-ms", "200"]


# -- pure parts --------------------------------------------------------------------------------------------

def test_chunking_fills_a_missing_side_at_real_time_and_keeps_whole_samples():
    assert resolve_chunking(0, 0, 32, 2) == (0, 0.0)  # the codec's own framing
    assert resolve_chunking(2048, 200, 32, 2) == (2048, 200.0)
    assert resolve_chunking(0, 200, 8, 1) == (1600, 200.0)  # real time for 200 ms of mu-law 8 kHz
    assert resolve_chunking(2048, 0, 32, 2) == (2048, 64.0)  # real time for 2 KB of PCM16 16 kHz
    assert resolve_chunking(2047, 200, 32, 2) == (2046, 200.0)  # an odd PCM16 chunk would be malformed
    assert resolve_chunking(1, 20, 32, 2) == (2, 20.0)


def test_real_time_ratio_of_the_seeds_2kb_every_200ms():
    """2048 B per 200 ms: 256 ms of mu-law 8 kHz (1.28x real time), 64 ms of PCM16 16 kHz (0.32x)."""
    for name, expected in (("twilio", 1.28), ("acs", 0.32), ("browser", 0.32)):
        stream = AudioStream(CODECS[name](), 2048, 200)
        assert stream.message_bytes == 2048 and stream.step_ms == 200
        assert real_time_ratio(100 * stream.message_ms, 100 * stream.step_ms) == pytest.approx(expected)
    assert real_time_ratio(1000, 0) is None
    assert real_time_ratio(1000, 1000) == 1.0


@pytest.mark.parametrize("name", list(CODECS))
def test_without_chunk_options_the_stream_is_the_codecs_own_frames(name):
    codec = CODECS[name]()
    stream = AudioStream(codec)
    assert stream.step_ms == codec.frame_ms and stream.message_ms == codec.frame_ms
    for clip in caller_clips():
        assert stream.clip_payloads(clip) is encoded_payloads(codec, clip)
        first, end = stream.speech_messages(clip)
        assert (first * codec.frame_ms, end * codec.frame_ms) == wire_speech_bounds(codec, clip)


@pytest.mark.parametrize("name", list(CODECS))
def test_chunks_carry_the_same_wire_audio_and_anchor_speech_on_the_chunk_grid(name):
    codec = CODECS[name]()
    stream = AudioStream(codec, 2048, 200)
    per_ms = codec.wire_bytes_per_ms
    for clip in caller_clips():
        wire = b"".join(codec.payload_audio(p) for p in encoded_payloads(codec, clip))
        chunks = [codec.payload_audio(p) for p in stream.clip_payloads(clip)]
        assert all(len(c) == 2048 for c in chunks)
        assert b"".join(chunks)[:len(wire)] == wire and len(chunks) == math.ceil(len(wire) / 2048)
        start_ms, end_ms = wire_speech_bounds(codec, clip)
        first, end = stream.speech_messages(clip)
        # the chunk holding the first speech byte, and the one holding the speech end
        assert first * 2048 <= start_ms * per_ms < (first + 1) * 2048
        assert end * 2048 <= end_ms * per_ms < (end + 1) * 2048
        assert stream.clip_payloads(clip) is stream.clip_payloads(clip)  # encoded once
    silence = codec.payload_audio(stream.silence)
    assert len(silence) == 2048 and set(silence) == ({0xFF} if name == "twilio" else {0})


def test_frame_sized_chunks_equal_the_codecs_frames():
    for name in ("acs", "twilio"):
        codec = CODECS[name]()
        framed, chunked = AudioStream(codec), AudioStream(CODECS[name](), codec.frame_ms * codec.wire_bytes_per_ms, codec.frame_ms)
        for clip in caller_clips():
            assert chunked.clip_payloads(clip) == framed.clip_payloads(clip)
            assert chunked.speech_messages(clip) == framed.speech_messages(clip)


def test_split_chunks_pads_with_the_silence_pattern():
    assert split_chunks(b"abcde", 2, b"\xff") == [b"ab", b"cd", b"e\xff"]
    assert split_chunks(b"abcd", 2, b"\x00\x00") == [b"ab", b"cd"]
    assert chunk_span(0, 4096, 2048) == (0, 2)  # a speech end on a boundary belongs to the next chunk
    assert chunk_span(100, 4095, 2048) == (0, 1)


def test_chunked_twilio_frames_step_their_timestamps_by_the_interval():
    codec = TwilioCodec("CA1", "MZ1")
    stream = AudioStream(codec, 2048, 200)
    message = json.loads(codec.frame(stream.clip_payloads(caller_clips()[0])[3], 3))
    assert message["media"]["timestamp"] == "600" and len(base64.b64decode(message["media"]["payload"])) == 2048


def test_fault_choice_is_seeded_uniform_and_respects_the_rate():
    first = FaultInjector(1.0, fault_rng(7))
    again = FaultInjector(1.0, fault_rng(7))
    assert [first.roll() for _ in range(50)] == [again.roll() for _ in range(50)]  # seeded: runs repeat
    always = FaultInjector(1.0, random.Random(1))
    counts = Counter(always.roll() for _ in range(4000))
    assert set(counts) == set(FAULT_KINDS) and all(800 <= n <= 1200 for n in counts.values()), counts
    never = FaultInjector(0.0, random.Random(1))
    assert all(never.roll() is None for _ in range(200))
    some = FaultInjector(0.25, random.Random(2))
    injected = sum(some.roll() is not None for _ in range(4000))
    assert 850 <= injected <= 1150
    last_turn = FaultInjector(1.0, random.Random(3))
    assert RECONNECT not in {last_turn.roll(can_reconnect=False) for _ in range(500)}
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            FaultInjector(bad, random.Random(1))


def test_faults_strike_mid_speech():
    at, skip = fault_window(100, 20, 80, SKIPPED_CHUNKS)
    assert 20 <= at and at + skip <= 80 and skip == SKIPPED_RUN and abs(at + skip / 2 - 50) <= 1
    assert fault_window(100, 20, 80, ABRUPT_DISCONNECT) == (50, 0)
    at, skip = fault_window(6, 1, 4, SKIPPED_CHUNKS)  # a short utterance (big chunks): skip a third at most
    assert skip == 1 and 1 <= at <= 4
    at, skip = fault_window(1, 0, 1, SKIPPED_CHUNKS)
    assert (at, skip) == (0, 1)


def test_malformed_frames_are_unparseable_for_their_protocol():
    with pytest.raises(ValueError):
        json.loads(MALFORMED_TEXT)
    assert len(MALFORMED_BINARY) % 2 == 1  # not PCM16


def test_call_options_default_to_off():
    assert CallOptions.from_options(None) == CallOptions(0.0, 0, 0.0, 0.0, 0)
    parsed = argparse.Namespace(call_duration=6.0, chunk_bytes=2048, chunk_interval_ms=200.0, fault_rate=0.5, calls_per_user=1)
    assert CallOptions.from_options(parsed) == CallOptions(6.0, 2048, 200.0, 0.5, 1)


def _turns(*outcomes: str | None) -> list[Turn]:
    clip = caller_clips()[0]
    return [Turn(number, clip, 0.0, 1.0, outcome=outcome) for number, outcome in enumerate(outcomes, start=1)]


def test_a_call_completes_when_every_turn_is_answered_or_cut_on_purpose():
    def failure(**fields):
        found = call_failure(CallResult(**fields))
        return None if found is None else found.kind

    assert failure(turns=_turns(ANSWERED, CUT_BY_HANGUP), answered_turns=1, cut_turns=1) is None
    assert failure(turns=_turns(ANSWERED, ABANDONED), answered_turns=1, abandoned_turns=1) is None
    assert failure(turns=_turns(ANSWERED, UNANSWERED), answered_turns=1, failure="no audible agent audio") == UNANSWERED_TURN
    assert failure(turns=_turns(ANSWERED, None), answered_turns=1) == OTHER_FAILURE  # never decided: not a success
    assert failure(turns=_turns(ANSWERED), answered_turns=1, failure="x", dropped=True) == DROPPED
    assert failure(failure="call setup failed: HTTP 503", setup_failed=True) == SETUP_FAILED
    # hung up as planned before the agent said a word: the caller heard nothing, whatever the timeout
    assert failure(turns=_turns(CUT_BY_HANGUP), cut_turns=1) == NEVER_HEARD
    assert failure(turns=_turns(ANSWERED), answered_turns=1, checks_failed="turn 1 lacks 'ambulance'") == CHECKS_FAILED
    assert not CallResult(turns=_turns(ANSWERED, UNANSWERED), answered_turns=1, failure="x").completed
    first, second = _turns(ABANDONED, ANSWERED)
    whole = CallResult().absorb(CallResult(turns=[first], abandoned_turns=1, faults=[ABRUPT_DISCONNECT], continue_from=1))
    whole.absorb(CallResult(turns=[second], answered_turns=1))
    assert whole.completed and whole.faults == [ABRUPT_DISCONNECT] and whole.continue_from is None


# -- real runs ---------------------------------------------------------------------------------------------

def run_locust(host: str, tmp_path: Path, run_id: str, args: list[str], classes: tuple[str, ...] = ("TelephonyCaller",),
               users: int = 2, seconds: int = 8) -> tuple[dict, list[dict]]:
    """A short headless run; its report and its call log lines."""
    call_log = tmp_path / f"{run_id}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICELOAD_")}
    done = subprocess.run([sys.executable, "-m", "locust", "-f", "locustfile.py", *classes, "--headless", "--host", host,
                           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "12",
                           "--only-summary", "--results-dir", str(tmp_path), "--run-id", run_id,
                           "--call-log", str(call_log), "--barge-in-rate", "0", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=90, env=env)
    report_path = tmp_path / run_id / "report.json"
    assert report_path.exists(), done.stderr[-2000:]
    calls = [json.loads(line) for line in call_log.read_text().splitlines()] if call_log.exists() else []
    return json.loads(report_path.read_text()), calls


def failure_kinds(report: dict) -> set[str]:
    return {e["kind"] for e in report["errors"]}


def test_call_duration_holds_calls_for_that_long_without_failures(start_stack, tmp_path):
    stack = start_stack()
    report, calls = run_locust(stack.base_url, tmp_path, "duration", ["--call-duration", "6"], users=3, seconds=8)
    counters = report["counters"]
    assert len(calls) >= 3 and counters["calls_completed"] == len(calls)
    assert counters.get("calls_failed", 0) == 0 and counters.get("calls_interrupted", 0) == 0
    assert not failure_kinds(report) & {"voice_loop", "ws_dropped", "exception"}, report["errors"]
    for call in calls:
        assert call["completed"] and call["failure"] is None
        assert 6.0 <= call["duration_s"] <= 6.4, call  # hung up on the first message due at or after 6 s
        outcomes = [t["outcome"] for t in call["turns"]]
        assert all(o == "answered" for o in outcomes[:-1]) and outcomes[-1] in ("answered", "cut_by_hangup"), call
    cut = sum(t["outcome"] == "cut_by_hangup" for c in calls for t in c["turns"])
    assert counters.get("turns_cut_by_hangup", 0) == cut
    answered = sum(t["outcome"] == "answered" for c in calls for t in c["turns"])
    assert report["metrics"]["voice_loop"]["count"] == answered
    assert counters["audio_ms_sent"] / counters["audio_stream_ms"] == pytest.approx(1.0, abs=0.02)


def eot_chunk(codec, stream: AudioStream, clip_id: str, threshold: float = DEFAULT_SPEECH_RMS) -> int | None:
    """Index (from the clip's first chunk) of the chunk on whose arrival the target's VAD ends the turn."""
    endpointer = Endpointer(EOT_SILENCE_MS)
    payloads = stream.clip_payloads(clip_by_id(clip_id))
    for index in range(len(payloads) + 50):
        payload = payloads[index] if index < len(payloads) else stream.silence
        samples = codec.decode_payload(payload)
        if endpointer.feed(pcm16_rms(samples) >= threshold, stream.message_ms) is VadEvent.END_OF_TURN:
            return index
    return None


def first_audible_ms(clip_id: str, frame_ms: int) -> int:
    clip = clip_by_id(clip_id)
    frames = split_frames(clip.pcm, frame_bytes(clip.sample_rate, frame_ms))
    return next(i for i, f in enumerate(frames) if pcm16_rms(f) >= DEFAULT_SPEECH_RMS) * frame_ms


@pytest.mark.priority  # voice_loop against the chunk schedule, to within 15 ms
@pytest.mark.parametrize("profile,ratio", [("twilio-media", 1.28), ("artagent-v1", 0.32)])
def test_chunked_audio_paces_as_asked_and_voice_loop_follows_the_chunks(start_stack, tmp_path, profile, ratio):
    """2 KB every 200 ms: 1.28x real time as mu-law 8 kHz, 0.32x as PCM16 16 kHz. Each voice_loop equals what
    the target's own record implies when speech ends with the chunk holding it: (the chunk completing the
    end-of-turn silence - that chunk) x 200 ms + the target's end of turn -> first audible frame."""
    stack = start_stack(*FIXED)
    report, calls = run_locust(stack.base_url, tmp_path, f"chunks-{profile}",
                               ["--target-profile", profile, "--chunk-bytes", "2048", "--chunk-interval-ms", "200",
                                "--turns-per-call", "1"], users=2, seconds=6)
    counters = report["counters"]
    assert counters["audio_bytes_sent"] == 2048 * counters["audio_chunks_sent"]
    assert counters["audio_ms_sent"] / counters["audio_stream_ms"] == pytest.approx(ratio, rel=0.03)
    assert report["metrics"]["frame_send_lateness"]["count"] == counters["audio_chunks_sent"]  # every chunk timed
    assert counters.get("calls_failed", 0) == 0 and counters["calls_completed"] >= 2
    assert report["metrics"]["voice_loop"]["count"] >= 2 and "voice_loop" not in failure_kinds(report)

    codec = TwilioCodec("CA1", "MZ1") if profile == "twilio-media" else AcsCodec("call-1")
    stream = AudioStream(codec, 2048, 200)
    checked = []
    for call in calls:
        truth = httpx.get(f"{stack.base_url}/api/v1/metrics/session/{call['call_id']}", timeout=5).json()
        if len(truth["turns"]) != len(call["turns"]):
            continue  # e.g. a pause inside an utterance long enough to end a turn on the target
        for client, server in zip(call["turns"], truth["turns"]):
            eot = eot_chunk(codec, stream, client["clip"])
            _, speech_end = stream.speech_messages(clip_by_id(client["clip"]))
            if client["voice_loop"] is None or eot is None or server["eot_to_first_audio_ms"] is None:
                continue
            lead = first_audible_ms(server["agent_clip"], truth["settings"]["agent_frame_ms"])
            implied = (eot - speech_end) * stream.step_ms + server["eot_to_first_audio_ms"] + lead
            checked.append(round(client["voice_loop"] - implied, 2))
    assert len(checked) >= 2 and all(abs(error) <= 15 for error in checked), checked


def test_fault_injection_covers_every_kind_and_the_target_survives(start_stack, tmp_path):
    stack = start_stack()
    report, calls = run_locust(stack.base_url, tmp_path, "faults",
                               ["--fault-rate", "1.0", "--call-duration", "9", "--turns-per-call", "1"],
                               classes=("TelephonyCaller", "BrowserCaller"), users=4, seconds=4)
    health = httpx.get(f"{stack.base_url}/api/v1/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    target = health.json()
    counters = report["counters"]
    kinds = {kind: counters.get(f"simulated_{kind}", 0) for kind in FAULT_KINDS}
    assert all(n > 0 for n in kinds.values()), kinds
    assert counters["simulated_errors"] == sum(kinds.values())
    assert counters["calls_completed_with_faults"] > 0
    assert counters["calls_reconnected"] == sum(c["continues"] for c in calls) > 0  # each went on as a new call
    # one utterance per plan, cycled until the call's 9 s were up, across the new calls too
    assert max(t["turn"] for c in calls for t in c["turns"]) >= 2
    # faults made on purpose are not failures of the system under test
    assert counters.get("calls_failed", 0) == 0 and counters.get("ws_dropped", 0) == 0
    assert counters.get("calls_interrupted", 0) == 0
    assert not failure_kinds(report) & {"voice_loop", "ws_dropped", "exception"}, report["errors"]
    # the target saw every malformed frame, every socket as a call, and ended them all
    assert target["counters"]["malformed_frames"] == kinds["malformed_frame"]
    assert target["calls_total"] == counters["ws_opened"] and target["active_calls"] == 0
    assert sum(len(c["faults"]) for c in calls) == counters["simulated_errors"]
