"""Pure tests of the reference target: latency fitting, settings, VAD state machines, pre-encoded clips.

Plus the CLI's exit code 2 on invalid settings (a real `python -m target` subprocess).
"""

from __future__ import annotations

import base64
import json
import math
import random
import subprocess
import sys

import pytest

try:
    from tests import target_fixtures as tf
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import)
    import target_fixtures as tf

from target.agent_audio import load_agent_clips
from target.latency import LatencyModel, draw_ms, lognormal_params
from target.settings import DEFAULT_MANIFEST, Settings, SettingsError, load_settings
from target.vad import Endpointer, SpeechRun, VadEvent

pytestmark = pytest.mark.timeout(30)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- latency model -----------------------------------------------------------------------------------------


def test_lognormal_params_fit_p50_and_p95() -> None:
    mu, sigma = lognormal_params(150.0, 300.0)
    assert mu == pytest.approx(math.log(150.0))
    assert sigma == pytest.approx((math.log(300.0) - math.log(150.0)) / 1.645)
    assert math.exp(mu + 1.645 * sigma) == pytest.approx(300.0)
    assert lognormal_params(50.0, 50.0)[1] == 0.0
    with pytest.raises(ValueError):
        lognormal_params(100.0, 50.0)


def test_fixed_mode_returns_p50_exactly() -> None:
    rng = random.Random(1)
    assert {draw_ms(rng, 60.0, 120.0, "fixed") for _ in range(100)} == {60.0}
    model = LatencyModel(Settings(latency_mode="fixed"))
    assert [model.draw(s) for s in ("stt_partial", "stt_final", "llm_ttft", "tts_first_byte")] == [200, 60, 150, 50]


@pytest.mark.parametrize(("p50", "p95"), [(60.0, 120.0), (150.0, 300.0), (50.0, 100.0), (200.0, 350.0)])
def test_random_mode_empirical_quantiles_match_targets(p50: float, p95: float) -> None:
    rng = random.Random(7)
    draws = [draw_ms(rng, p50, p95, "random") for _ in range(20000)]
    assert percentile(draws, 0.50) == pytest.approx(p50, rel=0.03)
    assert percentile(draws, 0.95) == pytest.approx(p95, rel=0.05)
    assert min(draws) > 0


def test_random_mode_is_reproducible_with_a_seed() -> None:
    first = LatencyModel(Settings(seed=42))
    second = LatencyModel(Settings(seed=42))
    assert [first.draw("llm_ttft") for _ in range(50)] == [second.draw("llm_ttft") for _ in range(50)]
    assert LatencyModel(Settings(seed=43)).draw("llm_ttft") != LatencyModel(Settings(seed=42)).draw("llm_ttft")


# -- settings ----------------------------------------------------------------------------------------------


def test_settings_defaults_env_and_cli_precedence() -> None:
    assert load_settings([], {}) == Settings()
    env = {"VOICELOAD_TARGET_LLM_SLOTS": "4", "VOICELOAD_TARGET_LATENCY_MODE": "fixed",
           "VOICELOAD_TARGET_REDIS_URL": "redis://127.0.0.1:6390/0"}
    settings = load_settings(["--llm-slots", "8", "--stt-final-ms", "70.5"], env)
    assert settings.llm_slots == 8  # CLI beats env
    assert settings.latency_mode == "fixed"
    assert settings.stt_final_ms == 70.5
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert load_settings(["--redis-url", ""], env).redis_url is None


@pytest.mark.parametrize("argv", [
    ["--http-error-rate", "1.5"], ["--ws-drop-rate", "-0.1"], ["--llm-slots", "0"], ["--eot-silence-ms", "0"],
    ["--stt-final-p95-ms", "10"], ["--latency-mode", "chaos"], ["--seed", "abc"], ["--no-such-flag", "1"],
    ["--agent-frame-ms", "-40"], ["--stall-ms", "-1"],
])
def test_invalid_settings_raise(argv: list[str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(argv, {})


@pytest.mark.parametrize(("argv", "env", "needle"), [
    (["--http-error-rate", "2"], {}, "http_error_rate"),
    ([], {"VOICELOAD_TARGET_LLM_SLOTS": "0"}, "llm_slots"),
    (["--llm-ttft-p95-ms", "100"], {}, "llm_ttft_p95_ms"),
])
def test_cli_exits_2_with_one_line(argv: list[str], env: dict[str, str], needle: str) -> None:
    import os

    proc = subprocess.run([sys.executable, "-m", "target", *argv], cwd=tf.REPO, capture_output=True, text=True,
                          timeout=20, env={**os.environ, **env})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


# -- VAD -----------------------------------------------------------------------------------------------------


def test_endpointer_speech_start_and_end_of_turn_on_the_frame_reaching_eot() -> None:
    vad = Endpointer(300)
    assert vad.feed(False, 20) is None
    assert vad.feed(True, 20) is VadEvent.SPEECH_START
    events = [vad.feed(False, 20) for _ in range(14)]  # 280 ms of silence
    assert events == [None] * 14
    assert vad.feed(True, 20) is None  # any speech frame resets the accumulator
    assert [vad.feed(False, 20) for _ in range(14)] == [None] * 14
    assert vad.feed(False, 20) is VadEvent.END_OF_TURN  # 300 ms reached at this frame
    assert vad.feed(False, 20) is None and not vad.in_speech
    # 8 kHz Twilio frames and odd sizes count by duration
    vad = Endpointer(300)
    vad.feed(True, 20)
    assert [vad.feed(False, 100) for _ in range(3)] == [None, None, VadEvent.END_OF_TURN]


def test_speech_run_needs_consecutive_speech() -> None:
    run = SpeechRun(40)
    assert not run.feed(True, 20, now=1.0)
    assert not run.feed(False, 20, now=1.02)  # broken run
    assert not run.feed(True, 20, now=1.04)
    assert run.feed(True, 20, now=1.06)
    assert run.started_at == 1.04


# -- agent clips ---------------------------------------------------------------------------------------------


def test_agent_clips_are_pre_encoded_per_protocol() -> None:
    clips = load_agent_clips(DEFAULT_MANIFEST, 40)
    manifest_agents = [c for c in tf.MANIFEST["clips"] if c["role"] == "agent"]
    assert [c.id for c in clips] == [c["id"] for c in manifest_agents]
    clip = clips[0]
    assert clip.n_frames == len(clip.twilio) == len(clip.browser) == math.ceil(clip.duration_ms / 40)
    acs = json.loads(clip.acs[0])
    assert acs["kind"] == "AudioData" and len(base64.b64decode(acs["audioData"]["data"])) == 1280
    twilio = json.loads('{"event":"media","streamSid":"MZ1","media":{"payload":"' + clip.twilio[0])
    assert len(base64.b64decode(twilio["media"]["payload"])) == 320
    last = json.loads("{" + clip.browser[-1])
    assert last["is_final"] is True and last["frame_index"] == clip.n_frames - 1 and last["sample_rate"] == 16000
    assert json.loads("{" + clip.browser[0])["is_final"] is False
