"""The real Azure Speech SDK against the reference target's USP stand-in (target/speech_ws.py), and
SpeechUser under Locust: recognition and synthesis events, report metrics, and the skip without settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

try:
    from tests.target_fixtures import REPO, TargetServer, caller_clip
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import)
    from target_fixtures import REPO, TargetServer, caller_clip

speechsdk = pytest.importorskip("azure.cognitiveservices.speech")

from target.settings import Settings  # noqa: E402

SPEECH_ENV = ("SPEECH_HOST", "SPEECH_KEY", "SPEECH_REGION")


@pytest.fixture(scope="module")
def target():
    server = TargetServer("--latency-mode", "fixed")
    yield server
    server.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SPEECH_ENV}
    return {**env, **extra}


def test_sdk_recognizes_and_synthesizes_through_target(target):
    config = speechsdk.SpeechConfig(host=target.ws_base, subscription="local")
    config.set_property_by_name("SPEECH-BytesPerFrame", "640")
    clip = caller_clip("caller_chest_pain")
    stream = speechsdk.audio.PushAudioInputStream(
        speechsdk.audio.AudioStreamFormat(samples_per_second=16000, bits_per_sample=16, channels=1))
    recognizer = speechsdk.SpeechRecognizer(config, audio_config=speechsdk.audio.AudioConfig(stream=stream))
    partials: list[str] = []
    finals: list[tuple[object, str]] = []
    stopped = threading.Event()
    recognizer.recognizing.connect(lambda e: partials.append(e.result.text))
    recognizer.recognized.connect(lambda e: finals.append((e.result.reason, e.result.text)))
    recognizer.session_stopped.connect(lambda e: stopped.set())
    recognizer.canceled.connect(lambda e: stopped.set())
    recognizer.start_continuous_recognition_async().get()
    pcm = clip.pcm + b"\x00" * 32000  # + 1 s of silence: the target's 300 ms end of speech + final
    t0 = time.perf_counter()
    for n in range(len(pcm) // 640):
        delay = t0 + n * 0.02 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stream.write(pcm[n * 640 : (n + 1) * 640])
    stream.close()
    assert stopped.wait(10), "no session_stopped/canceled after the end of the audio stream"
    recognizer.stop_continuous_recognition_async().get()
    assert partials and all(partials), partials
    recognized = [text for reason, text in finals if reason == speechsdk.ResultReason.RecognizedSpeech and text]
    assert recognized == ["I have a sharp pain in my chest."], finals
    del recognizer, stream

    config.set_speech_synthesis_output_format(speechsdk.SpeechSynthesisOutputFormat.Riff16Khz16BitMonoPcm)
    synthesizer = speechsdk.SpeechSynthesizer(config, audio_config=None)
    chunks: list[int] = []
    synthesizer.synthesizing.connect(lambda e: chunks.append(len(e.result.audio_data)))
    result = synthesizer.speak_text_async("I understand. Let me help you with that right away.").get()
    assert result.reason == speechsdk.ResultReason.SynthesizingAudioCompleted, result.cancellation_details
    assert len(result.audio_data) > 16000 and chunks and sum(chunks) > 0
    del synthesizer


def _run_locust(tmp_path, env: dict[str, str], seconds: int) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "locustfile.py,users/backend_speech.py", "SpeechUser", "--headless",
         "-u", "2", "-r", "2", "-t", f"{seconds}s", "--host", "http://127.0.0.1:9", "--only-summary",
         "--results-dir", str(tmp_path), "--run-id", "s"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 40)
    report_path = tmp_path / "s" / "report.json"
    assert report_path.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(report_path.read_text())


def test_speech_user_under_locust_reports_modelled_latencies(target, tmp_path):
    proc, report = _run_locust(tmp_path, _env(SPEECH_HOST=target.ws_base), 8)
    metrics = report["metrics"]
    for name in ("stt_first_partial", "stt_final", "tts_first_byte"):
        assert metrics.get(name, {}).get("count", 0) > 0, (name, metrics, proc.stderr[-2000:])
        assert metrics[name].get("failures", 0) == 0, (name, report["errors"])
    # Expected stt_final in fixed mode. The target runs its VAD on each 20 ms frame at its arrival (the user
    # has the SDK send every 20 ms chunk as written) and the utterance ends at the arrival of the frame that
    # completes eot_silence_ms of silence, i.e. at scheduled speech end + eot_silence_ms (+ loopback and SDK
    # transit, a few ms); speech.phrase goes out stt_final_ms later (= its p50 in fixed mode). So
    # stt_final = eot_silence_ms + stt_final_ms = 300 + 60 = 360 ms; the manifest's speech end is on a 20 ms
    # grid, so the VAD may see the end up to one frame earlier than scheduled.
    defaults = Settings()
    expected = defaults.eot_silence_ms + defaults.stt_final_ms
    assert abs(metrics["stt_final"]["p50"] - expected) <= 30, (metrics["stt_final"], expected)
    # first partial: stt_partial_ms after the arrival of the first speech frame, and never before speech
    assert 0 < metrics["stt_first_partial"]["p50"] < defaults.stt_partial_ms + 100, metrics["stt_first_partial"]
    assert defaults.tts_first_byte_ms <= metrics["tts_first_byte"]["p50"] < defaults.tts_first_byte_ms + 100


def test_speech_user_without_settings_is_skipped_with_one_error(tmp_path):
    proc, report = _run_locust(tmp_path, _env(), 3)
    speech_errors = [e for e in report["errors"] if "SPEECH_HOST" in e["message"]]
    assert len(speech_errors) == 1 and speech_errors[0]["count"] == 1, report["errors"]
    assert not any(report["metrics"].get(name, {}).get("count") for name in ("stt_final", "tts_first_byte"))
