"""The real Azure Speech SDK against the reference target's USP stand-in (target/speech_ws.py):
recognition and synthesis events. SpeechUser under Locust is in tests/test_backend_inprocess.py."""

from __future__ import annotations

import threading
import time

import pytest

try:
    from tests.target_fixtures import TargetServer, caller_clip
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import)
    from target_fixtures import TargetServer, caller_clip

speechsdk = pytest.importorskip("azure.cognitiveservices.speech")


@pytest.fixture(scope="module")
def target():
    server = TargetServer("--latency-mode", "fixed")
    yield server
    server.stop()


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
    completed = threading.Event()  # events arrive on the SDK's thread: synthesizing ones, then completed
    synthesizer.synthesizing.connect(lambda e: chunks.append(len(e.result.audio_data)))
    synthesizer.synthesis_completed.connect(lambda e: completed.set())
    result = synthesizer.speak_text_async("I understand. Let me help you with that right away.").get()
    assert completed.wait(10), "no synthesis_completed event"
    assert result.reason == speechsdk.ResultReason.SynthesizingAudioCompleted, result.cancellation_details
    assert len(result.audio_data) > 16000 and chunks and sum(chunks) > 0
    del synthesizer


