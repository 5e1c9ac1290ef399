"""SpeechUser: Azure Speech (speech to text and text to speech) under load through the real Speech SDK.

Where it points (users.runtime settings):
- SPEECH_HOST=ws://127.0.0.1:8000 (or wss://...): a Speech container or the reference target's USP
  stand-in (target/speech_ws.py): `SpeechConfig(host=..., subscription=SPEECH_KEY or "local")`.
- SPEECH_KEY + SPEECH_REGION: the Azure Speech service.
- neither: the user records one error saying how to enable it and stops; nothing is faked.

Each task is one caller utterance and one agent reply. Speech to text: a real caller clip (16 kHz PCM16)
written to a PushAudioInputStream in 20 ms chunks on absolute deadlines t0 + n * 20 ms, then trailing
silence, then the stream is closed. Text to speech: the agent's reply text, synthesized.
Metrics (group `speech`), anchored to the schedule:
- stt_first_partial: first `recognizing` event - scheduled speech start (t0 + clip.speech_start_ms)
- stt_final: first `recognized` event with text - scheduled speech end (t0 + clip.speech_end_ms)
- tts_first_byte: synthesis request - first `synthesizing` event (first audio chunk)
- tts_total (recorded only): synthesis request - synthesis completed

The SDK calls back on its own native threads and its `.get()` blocks the whole gevent hub, so callbacks
only append (perf_counter timestamp, event) to a deque (atomic under the GIL); the greenlet polls it with
short gevent sleeps, and the blocking start/stop calls run in gevent's threadpool. Event times are taken
on the SDK thread, so polling granularity does not enter the measurements.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any, Callable

import azure.cognitiveservices.speech as speechsdk
import gevent
from locust import User, between, task

from users.run_context import RECORDER, context_of, emit
from audio.fixtures import caller_clips, load_clips
from users.runtime import get_settings

GROUP = "speech"
SAMPLE_RATE = 16000
CHUNK_MS = 20
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000
TRAILING_SILENCE_MS = 1000  # after the clip: room for the service's end-of-speech silence + final result
RESULT_TIMEOUT_S = 10.0
POLL_S = 0.005
STOP_TIMEOUT_S = 3.0
# The SDK batches pushed audio into 100 ms messages by default; "SPEECH-BytesPerFrame" makes it send each
# 20 ms chunk as it is written, as a telephony media stream would, so the measured latency is the service's
# and not the SDK's buffering.
SDK_FRAME_PROPERTY = ("SPEECH-BytesPerFrame", str(CHUNK_BYTES))
ENABLE_HINT = ("speech user skipped: set SPEECH_HOST=ws://127.0.0.1:<port> (a Speech container or the reference "
               "target's stand-in) or SPEECH_KEY + SPEECH_REGION (Azure Speech) to load-test speech")


def build_speech_config(settings) -> speechsdk.SpeechConfig | None:
    """SpeechConfig for the configured service, or None when no speech setting is present."""
    key = settings.speech_key.get_secret_value() if settings.speech_key else None
    if settings.speech_host:
        config = speechsdk.SpeechConfig(host=settings.speech_host, subscription=key or "local")
    elif key and settings.speech_region:
        config = speechsdk.SpeechConfig(subscription=key, region=settings.speech_region)
    else:
        return None
    config.speech_recognition_language = "en-US"
    config.set_property_by_name(*SDK_FRAME_PROPERTY)
    config.set_speech_synthesis_output_format(speechsdk.SpeechSynthesisOutputFormat.Raw16Khz16BitMonoPcm)
    return config


class EventLog:
    """SDK events as (perf_counter, kind, payload), appended from SDK threads, read from a greenlet."""

    def __init__(self) -> None:
        self.items: deque[tuple[float, str, Any]] = deque()

    def hook(self, kind: str, payload: Callable[[Any], Any] = lambda e: None) -> Callable[[Any], None]:
        def callback(evt: Any) -> None:
            now = time.perf_counter()
            try:
                value = payload(evt)
            except Exception as exc:  # never raise into the SDK's native thread
                value = repr(exc)
            self.items.append((now, kind, value))
        return callback

    def first(self, kind: str) -> tuple[float, Any] | None:
        for t, k, value in list(self.items):
            if k == kind:
                return t, value
        return None

    def wait(self, kinds: tuple[str, ...], deadline: float) -> tuple[float, str, Any] | None:
        """First event of one of `kinds`, polling with short gevent sleeps until the perf deadline."""
        while True:
            for item in list(self.items):
                if item[1] in kinds:
                    return item
            if time.perf_counter() >= deadline:
                return None
            gevent.sleep(POLL_S)


def _in_thread(fn: Callable[[], Any], timeout: float = RESULT_TIMEOUT_S) -> Any:
    """Run a blocking SDK call in gevent's threadpool so the other greenlets keep running."""
    return gevent.get_hub().threadpool.spawn(fn).get(timeout=timeout)


def _cancel_text(evt: Any) -> str:
    details = getattr(evt, "cancellation_details", None) or evt.result.cancellation_details
    return f"{details.reason.name}: {details.error_details or ''}".strip()


class SpeechUser(User):
    wait_time = between(0.5, 1.0)
    weight = 1

    def on_start(self) -> None:
        self.config = build_speech_config(get_settings())
        if self.config is None:
            if context_of(self.environment).once("speech skipped"):  # once per run, in every run's report
                RECORDER.error(GROUP, ENABLE_HINT)
            self.stop()
            return
        self.agent_texts = [c.text for c in load_clips() if c.role == "agent"] or ["Thank you."]
        # one synthesizer (one connection) per user, as an agent keeps it for the call; the first request
        # of each user includes the connection setup
        self.synthesizer = speechsdk.SpeechSynthesizer(self.config, audio_config=None)
        self.tts_log = EventLog()
        self.synthesizer.synthesizing.connect(self.tts_log.hook("synthesizing", lambda e: e.result.result_id))
        self.synthesizer.synthesis_completed.connect(self.tts_log.hook("completed", lambda e: e.result.result_id))
        self.synthesizer.synthesis_canceled.connect(self.tts_log.hook("canceled", _cancel_text))

    def on_stop(self) -> None:
        self.synthesizer = None

    @task
    def utterance_and_reply(self) -> None:
        self.recognize(random.choice(caller_clips()))
        self.synthesize(random.choice(self.agent_texts))

    # -- speech to text ------------------------------------------------------------------------------

    def recognize(self, clip) -> None:
        fmt = speechsdk.audio.AudioStreamFormat(samples_per_second=SAMPLE_RATE, bits_per_sample=16, channels=1)
        stream = speechsdk.audio.PushAudioInputStream(fmt)
        recognizer = speechsdk.SpeechRecognizer(self.config, audio_config=speechsdk.audio.AudioConfig(stream=stream))
        log = EventLog()
        recognizer.recognizing.connect(log.hook("recognizing", lambda e: e.result.text))
        recognizer.recognized.connect(log.hook("recognized", lambda e: (e.result.reason, e.result.text)))
        recognizer.canceled.connect(log.hook("canceled", _cancel_text))
        recognizer.session_stopped.connect(log.hook("stopped"))
        closed = False
        try:
            try:
                _in_thread(lambda: recognizer.start_continuous_recognition_async().get())
            except Exception as exc:
                emit(GROUP, "stt_final", 0.0, f"recognition did not start: {exc!r}"[:200])
                return
            pcm = clip.pcm + b"\x00" * (SAMPLE_RATE * 2 * TRAILING_SILENCE_MS // 1000)
            pcm += b"\x00" * (-len(pcm) % CHUNK_BYTES)
            t0 = time.perf_counter()
            for n in range(len(pcm) // CHUNK_BYTES):
                delay = t0 + n * CHUNK_MS / 1000.0 - time.perf_counter()
                if delay > 0:
                    gevent.sleep(delay)
                stream.write(pcm[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES])
                if n % 10 == 0 and log.first("canceled"):
                    break
            stream.close()
            closed = True
            speech_start = t0 + clip.speech_start_ms / 1000.0
            speech_end = t0 + clip.speech_end_ms / 1000.0
            done = log.wait(("stopped", "canceled"), time.perf_counter() + RESULT_TIMEOUT_S)
            self._report_stt(log, speech_start, speech_end, done)
        finally:  # also on GreenletExit when Locust stops the user mid-utterance
            if not closed:
                stream.close()  # end of stream first, or stopping waits for audio that never comes
            try:
                _in_thread(lambda: recognizer.stop_continuous_recognition_async().get(), STOP_TIMEOUT_S)
            except (Exception, gevent.Timeout):
                pass


    @staticmethod
    def _report_stt(log: EventLog, speech_start: float, speech_end: float, done) -> None:
        canceled = log.first("canceled")
        error = None
        if canceled is not None and not str(canceled[1]).startswith("EndOfStream"):
            error = f"recognition canceled: {canceled[1]}"[:200]
        elif done is None:
            error = f"no end of recognition within {RESULT_TIMEOUT_S:.0f} s"
        partial = log.first("recognizing")
        if partial is not None:
            emit(GROUP, "stt_first_partial", (partial[0] - speech_start) * 1000.0)
        else:
            emit(GROUP, "stt_first_partial", 0.0, error or "no recognizing event")
        final = next(((t, v) for t, k, v in list(log.items)
                      if k == "recognized" and v[0] == speechsdk.ResultReason.RecognizedSpeech and v[1]), None)
        if final is not None:
            emit(GROUP, "stt_final", (final[0] - speech_end) * 1000.0)
        else:
            emit(GROUP, "stt_final", 0.0, error or "no recognized event with text")

    # -- text to speech ------------------------------------------------------------------------------

    def synthesize(self, text: str) -> None:
        log = self.tts_log
        log.items.clear()  # the previous request has completed or timed out
        sent = time.perf_counter()
        try:
            future = self.synthesizer.speak_text_async(text)  # returns at once; the result arrives by callback
            done = log.wait(("completed", "canceled"), sent + RESULT_TIMEOUT_S)
            first = log.first("synthesizing")
            if done is not None and done[1] == "completed" and first is not None:
                emit(GROUP, "tts_first_byte", (first[0] - sent) * 1000.0)
                RECORDER.record("tts_total", (done[0] - sent) * 1000.0, GROUP)
            elif done is not None and done[1] == "canceled":
                emit(GROUP, "tts_first_byte", 0.0, f"synthesis canceled: {done[2]}"[:200])
            elif done is None:
                emit(GROUP, "tts_first_byte", 0.0, f"no synthesis result within {RESULT_TIMEOUT_S:.0f} s")
            else:
                emit(GROUP, "tts_first_byte", 0.0, "synthesis completed without audio")
            if done is not None:
                _in_thread(future.get)  # already resolved; releases the SDK's handle
        except Exception as exc:
            emit(GROUP, "tts_first_byte", (time.perf_counter() - sent) * 1000.0, f"synthesis failed: {exc!r}"[:200])
