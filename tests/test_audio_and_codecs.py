"""Pure caller-side pieces: audio math, fixtures, ACS/Twilio codecs, the absolute-deadline pacer."""

import base64
import json

import numpy as np
import pytest

from protocols.acs import AcsCodec
from protocols.media import AUDIO, MARK, OTHER, STOP_AUDIO, ProtocolError
from protocols.twilio import TwilioCodec
from audio.pcm import mulaw_decode, mulaw_encode, pcm16_rms, speech_bounds_ms
from audio.fixtures import caller_clips, encoded_payloads, load_clips, silence_payload
from voice.pacer import AudioPacer


def test_mulaw_round_trip_is_close():
    samples = np.linspace(-30000, 30000, 1001).astype(np.int16)
    decoded = mulaw_decode(mulaw_encode(samples)).astype(np.int32)
    assert np.all(np.abs(decoded - samples) <= np.maximum(np.abs(samples.astype(np.int32)) // 16, 8))


def test_fixture_manifest_matches_the_audio():
    clips = load_clips()
    assert {c.role for c in clips} == {"caller", "agent"}
    for clip in clips:
        assert clip.sample_rate == 16000
        assert speech_bounds_ms(clip.pcm, 16000) == (clip.speech_start_ms, clip.speech_end_ms)
        assert pcm16_rms(clip.pcm) > 500  # real speech, not silence


def test_acs_frames_are_valid_json_with_20ms_of_pcm():
    codec = AcsCodec("call-1")
    clip = caller_clips()[0]
    payloads = encoded_payloads(codec, clip)
    assert len(payloads) == -(-len(clip.pcm) // 640)
    message = json.loads(codec.frame(payloads[3], 3))
    assert message["kind"] == "AudioData"
    assert base64.b64decode(message["audioData"]["data"]) == clip.pcm[3 * 640:4 * 640]
    assert message["audioData"]["timestamp"].endswith("Z") and message["audioData"]["silent"] is False
    meta = json.loads(codec.opening_messages()[0])
    assert meta["audioMetadata"]["sampleRate"] == 16000 and meta["audioMetadata"]["length"] == 640
    assert base64.b64decode(silence_payload(codec)) == b"\x00" * 640


def test_acs_parse_is_case_insensitive_and_strict_about_garbage():
    codec = AcsCodec("call-1")
    pcm = np.full(640, 3000, dtype="<i2").tobytes()
    event = codec.parse(json.dumps({"Kind": "AudioData", "AudioData": {"Data": base64.b64encode(pcm).decode()}}))
    assert event.kind == AUDIO and pcm16_rms(codec.decode_audio(event.data)) == pytest.approx(3000)
    assert codec.parse(b'{"kind":"StopAudio","audioData":null,"stopAudio":{}}').kind == STOP_AUDIO
    assert codec.parse(b'{"kind":"Transcription"}').kind == OTHER
    for garbage in (b"not json", b"[1,2]", b'{"no":"kind"}', b'{"kind":"AudioData","audioData":{}}'):
        with pytest.raises(ProtocolError):
            codec.parse(garbage)


def test_twilio_frames_carry_mulaw_at_8khz():
    codec = TwilioCodec("CA1", "MZ1", {"call_id": "x"})
    clip = caller_clips()[0]
    payloads = encoded_payloads(codec, clip)
    assert len(base64.b64decode(payloads[0])) == 160  # 20 ms at 8 kHz, one byte per sample
    message = json.loads(codec.frame(payloads[5], 5))
    assert message["event"] == "media" and message["streamSid"] == "MZ1"
    assert message["media"]["timestamp"] == "100" and message["media"]["chunk"] == "6"
    start = json.loads(codec.opening_messages()[1])
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert codec.parse(b'{"event":"clear","streamSid":"MZ1"}').kind == STOP_AUDIO
    assert codec.parse(b'{"event":"mark","mark":{"name":"turn-1"}}').kind == MARK
    with pytest.raises(ProtocolError):
        codec.parse(b'{"event":"media","media":{}}')


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_uses_absolute_deadlines_and_reports_lateness():
    clock = FakeClock()
    pacer = AudioPacer(20, t0=100.0, clock=clock, sleep=clock.sleep)
    assert pacer.wait_for(0) == 0.0
    clock.now += 0.005  # 5 ms of work
    assert pacer.wait_for(1) == 0.0 and clock.slept[-1] == pytest.approx(0.015)  # sleeps only the remainder
    clock.now = 100.0 + 0.073  # the generator stalled
    assert pacer.wait_for(2) == pytest.approx(33.0)  # late against frame 2's own deadline
    assert pacer.wait_for(3) == pytest.approx(13.0)  # no drift: frame 3 is still due at t0 + 60 ms
    assert pacer.deadline(4) == pytest.approx(100.08)


def test_twilio_pads_with_silence_not_mulaw_zero_bytes():
    codec = TwilioCodec("CA1", "MZ1")
    payloads = codec.encode_payloads(b"\x10\x00" * 10)  # 10 samples, the rest of the frame is padding
    assert len(payloads) == 1
    assert pcm16_rms(codec.decode_audio(payloads[0])) < 50


def test_twilio_speech_bounds_come_from_the_encoded_audio():
    from audio.fixtures import wire_speech_bounds

    codec = TwilioCodec("CA1", "MZ1")
    clip = next(c for c in caller_clips() if c.id == "caller_yes")
    start, end = wire_speech_bounds(codec, clip)
    assert start == clip.speech_start_ms and end <= clip.speech_end_ms  # 8 kHz loses the sibilants' energy
    assert wire_speech_bounds(AcsCodec("x"), clip) == (clip.speech_start_ms, clip.speech_end_ms)


def test_fast_audio_paths_agree_with_the_json_parser():
    pcm = base64.b64encode(np.full(640, 1200, dtype="<i2").tobytes())
    acs, twilio = AcsCodec("c"), TwilioCodec("CA", "MZ")
    fast = acs.parse(b'{"kind":"AudioData","audioData":{"data":"' + pcm + b'","timestamp":null,"participantRawID":null,"silent":false}}')
    slow = acs.parse(b' {"kind":"AudioData","audioData":{"data":"' + pcm + b'","timestamp":null}}')
    assert fast.kind == slow.kind == AUDIO and bytes(fast.data) == slow.data.encode() and fast.duration_ms == slow.duration_ms == 40
    mulaw = base64.b64encode(b"\x7f" * 320)
    fast = twilio.parse(b'{"event":"media","streamSid":"MZ","media":{"payload":"' + mulaw + b'"}}')
    slow = twilio.parse(b'{"media":{"payload":"' + mulaw + b'"},"event":"media"}')
    assert fast.kind == slow.kind == AUDIO and bytes(fast.data) == slow.data.encode() and fast.duration_ms == slow.duration_ms == 40
    with pytest.raises(ProtocolError):  # a truncated fast-path lookalike still goes through the parser
        acs.parse(b'{"kind":"AudioData","audioData":{"data":"abc')
