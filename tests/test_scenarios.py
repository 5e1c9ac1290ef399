"""Medical scenarios and the reference target's fixture recognizer: the catalog and its audio, schema
errors, fingerprint recognition in every wire encoding, the keyword-picked replies, and (against a real
target process) transcripts and replies on the ACS, Twilio and browser sockets."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

try:
    from tests import target_fixtures as tf
except ImportError:  # tests/ itself on sys.path (pytest's rootdir-less import)
    import target_fixtures as tf

from scenarios import make_audio
from scenarios.catalog import PRIORITIES, ScenarioError, load_catalog, weighted_order
from target.agent_audio import choose_reply, load_agent_clips
from target.recognizer import TOPIC_RULES, Recognizer, generator_codecs, reply_topic
from target.settings import DEFAULT_MANIFEST
from audio.pcm import pcm16_rms, read_wav, speech_bounds_ms
from audio.fixtures import AUDIO_DIR, clip_by_id, load_clips

MANIFEST = json.loads((AUDIO_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_manifest(DEFAULT_MANIFEST)


# -- catalog -----------------------------------------------------------------------------------------------


def test_catalog_has_every_priority_and_topic() -> None:
    catalog = load_catalog()
    ids = {s.id for s in catalog.scenarios}
    assert {s.id for s in catalog.by_priority("emergency")} == {"chest_pain", "breathing_difficulty", "severe_allergic_reaction"}
    assert {s.id for s in catalog.by_priority("urgent")} == {"medication_side_effects", "mental_health_crisis", "moderate_injury"}
    assert {s.id for s in catalog.by_priority("routine")} == {"annual_checkup", "lab_results", "prescription_refill",
                                                              "follow_up_appointment"}
    assert len(ids) == len(catalog.scenarios) == 10
    for scenario in catalog.scenarios:
        assert scenario.priority in PRIORITIES and scenario.weight >= 1
        assert len(scenario.turns) >= 2, scenario.id  # a conversation, not one utterance
        assert any(t.expect for t in scenario.turns), scenario.id
        assert scenario.turns[0].barge_in_after_ms is None
    turns = [t for s in catalog.scenarios for t in s.turns]
    assert any(t.barge_in_after_ms for t in turns) and any(t.dtmf for t in turns) and any(t.think_time_ms for t in turns)


def test_every_scenario_clip_is_real_speech_in_the_manifest() -> None:
    entries = {c["id"]: c for c in MANIFEST["clips"]}
    for scenario in load_catalog().scenarios:
        for turn in scenario.turns:
            entry = entries[turn.clip]
            assert entry["role"] == "caller" and entry["sample_rate"] == 16000
            pcm, rate = read_wav(AUDIO_DIR / entry["file"])
            assert rate == 16000 and len(pcm) == entry["duration_ms"] * 32 + len(pcm) % 32
            start, end = speech_bounds_ms(pcm, rate)
            assert (start, end) == (entry["speech_start_ms"], entry["speech_end_ms"])
            assert start >= 200 and end - start >= 700, turn.clip  # lead-in breath, then over 0.7 s of speech
            assert pcm16_rms(pcm[start * 32:end * 32]) > 1000, turn.clip  # speech, not noise


def test_manifest_is_what_make_audio_generates() -> None:
    """The committed manifest lists exactly the generator's utterances (regenerable, nothing stale)."""
    made = {cid: (text, None) for cid, _voice, _wpm, text in make_audio.CALLER_UTTERANCES}
    made |= {cid: (text, topic) for cid, _voice, _wpm, text, topic in make_audio.AGENT_REPLIES}
    assert {c["id"]: (c["text"], c.get("topic")) for c in MANIFEST["clips"]} == made
    assert len({voice for _id, voice, *_ in make_audio.CALLER_UTTERANCES}) >= 4
    assert len({wpm for _id, _voice, wpm, _text in make_audio.CALLER_UTTERANCES}) >= 4


def test_weighted_order_gives_each_scenario_its_weight() -> None:
    scenarios = load_catalog().scenarios
    order = weighted_order(scenarios)
    assert Counter(s.id for s in order) == {s.id: s.weight for s in scenarios}
    first = Counter(s.priority for s in order[:9])  # spread out: any early stretch has every priority
    assert all(first[p] >= 2 for p in PRIORITIES), first


GOOD_TURN = "      - clip: caller_yes\n"


@pytest.mark.parametrize("text, where", [
    ("scenarios:\n  - id: x\n    priority: [unclosed\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping"),
    ("scenarios: []\n", "scenarios: List should have at least 1 item"),
    ("scenarios:\n  - id: x\n    priority: critical\n    turns:\n" + GOOD_TURN, "scenarios[0].priority: Input should be"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    weight: 0\n    turns:\n" + GOOD_TURN, "scenarios[0].weight:"),
    ("scenarios:\n  - id: Bad Id\n    priority: urgent\n    turns:\n" + GOOD_TURN, "scenarios[0].id: String should match"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns: []\n", "scenarios[0].turns: Tuple should have at least 1 item"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n      - clip: caller_nope\n",
     "scenarios[0].turns[0].clip: unknown caller clip 'caller_nope'"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n      - clip: agent_ack\n",
     "scenarios[0].turns[0].clip: unknown caller clip 'agent_ack'"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n" + GOOD_TURN + "      - clip: caller_yes\n        dtmf: '12'\n",
     "scenarios[0].turns[1].dtmf: String should match"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n      - clip: caller_yes\n        barge_in_after_ms: 500\n",
     "scenarios[0]: the first turn has no reply to interrupt"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n      - clip: caller_yes\n        think_ms: 500\n",
     "scenarios[0].turns[0].think_ms: Extra inputs are not permitted"),
    ("scenarios:\n  - id: x\n    priority: urgent\n    turns:\n      - clip: caller_yes\n        expect: ['']\n",
     "scenarios[0].turns[0].expect: keywords must be non-empty strings"),
])
def test_bad_scenario_files_give_one_clear_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert where in message, message


def test_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file or folder"):
        load_catalog(tmp_path / "missing")
    with pytest.raises(ScenarioError, match="no \\*.yaml scenario files"):
        load_catalog(tmp_path)
    one = "scenarios:\n  - id: same\n    priority: routine\n    turns:\n" + GOOD_TURN
    (tmp_path / "a.yaml").write_text(one)
    (tmp_path / "b.yaml").write_text(one)
    with pytest.raises(ScenarioError, match="scenario id 'same' is defined more than once"):
        load_catalog(tmp_path)
    (tmp_path / "b.yaml").unlink()
    assert [s.id for s in load_catalog(tmp_path).scenarios] == ["same"]


# -- recognizer and replies -------------------------------------------------------------------------------


def received_frames(codec, pcm: bytes) -> list[np.ndarray]:
    """A clip's frames as the target decodes them: encoded by the generator's codec, then decoded."""
    return [codec.decode_payload(p) for p in codec.encode_payloads(pcm)]


@pytest.mark.parametrize("codec", generator_codecs(), ids=lambda c: c.name)
def test_recognizer_maps_every_caller_clip_to_its_text(recognizer: Recognizer, codec) -> None:
    callers = [c for c in load_clips() if c.role == "caller"]
    assert len(callers) >= 20
    for clip in callers:
        speech = [f for f in received_frames(codec, clip.pcm) if pcm16_rms(f) >= 500]
        assert recognizer.recognize(speech[0]) == clip.text, clip.id  # the very first speech frame
        assert {recognizer.recognize(f) for f in speech} == {clip.text}, clip.id
        as_bytes = speech[len(speech) // 2].astype("<i2").tobytes()  # ACS/browser frames arrive as bytes
        assert recognizer.recognize(as_bytes) == clip.text


@pytest.mark.parametrize("codec", generator_codecs(), ids=lambda c: c.name)
def test_recognizer_does_not_know_other_audio(recognizer: Recognizer, codec) -> None:
    clip = clip_by_id("caller_refill")
    samples = np.frombuffer(clip.pcm, dtype="<i2")
    rng = np.random.default_rng(7)
    others = {
        "shifted 10 ms": clip.pcm[320:],  # the same speech off the frame grid
        "quieter": (samples * 0.9).astype("<i2").tobytes(),
        "louder": np.clip(samples * 1.2, -32768, 32767).astype("<i2").tobytes(),
        "tone": (3000 * np.sin(np.arange(32000) * 2 * np.pi * 440 / 16000)).astype("<i2").tobytes(),
        "noise": rng.integers(-4000, 4000, 32000, dtype=np.int16).astype("<i2").tobytes(),
    }
    for name, pcm in others.items():
        speech = [f for f in received_frames(codec, pcm) if pcm16_rms(f) >= 500]
        assert speech, name
        assert [recognizer.recognize(f) for f in speech] == [None] * len(speech), name
    if codec.name != "twilio":  # (mu-law quantizes a 1-LSB change away: on the wire it is the same audio)
        off = [f + 1 for f in received_frames(codec, clip.pcm) if pcm16_rms(f) >= 500]
        assert [recognizer.recognize(f) for f in off] == [None] * len(off)
    assert recognizer.recognize(b"\x00" * 640) is None


def test_reply_topics_follow_keyword_rules() -> None:
    assert reply_topic("My husband can\u2019t breathe") == "emergency"
    assert reply_topic("I NEED A REFILL") == "pharmacy"
    assert reply_topic("caller speech 1.23 s") is None and reply_topic("") is None and reply_topic(None) is None
    clips = load_agent_clips(DEFAULT_MANIFEST, 40)
    topics = {c.topic for c in clips}
    assert {topic for topic, _ in TOPIC_RULES} <= topics  # every rule has a reply to give
    defaults = [c for c in clips if c.topic is None]
    assert [c.id for c in defaults] == ["agent_ack", "agent_question", "agent_confirm"]
    assert [choose_reply(clips, n, None).id for n in (1, 2, 3, 4)] == ["agent_ack", "agent_question", "agent_confirm", "agent_ack"]
    assert choose_reply(clips, 2, "pharmacy").id == "agent_pharmacy"
    assert choose_reply(clips, 2, "no such topic").id == "agent_question"


def test_each_scenario_turn_gets_a_reply_with_its_keywords() -> None:
    """The reference target's rules and the scenarios agree: what each turn expects is in the reply it gets."""
    clips = load_agent_clips(DEFAULT_MANIFEST, 40)
    checked = 0
    for scenario in load_catalog().scenarios:
        for number, turn in enumerate(scenario.turns, start=1):
            reply = choose_reply(clips, number, reply_topic(clip_by_id(turn.clip).text))
            for keyword in turn.expect:
                assert keyword.lower() in reply.text.lower(), (scenario.id, number, keyword, reply.text)
                checked += 1
        first = choose_reply(clips, 1, reply_topic(clip_by_id(scenario.turns[0].clip).text))
        assert first.topic is not None, scenario.id  # the opening utterance always gets a relevant reply
    assert checked >= 20
    emergency = {choose_reply(clips, 1, reply_topic(clip_by_id(s.turns[0].clip).text)).id
                 for s in load_catalog().by_priority("emergency")}
    assert emergency == {"agent_emergency"}


# -- the real target ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target():
    server = tf.TargetServer("--latency-mode", "fixed")
    yield server
    server.stop()


def clip_pcm(clip_id: str, scale: float = 1.0) -> bytes:
    pcm = tf.caller_clip(clip_id).pcm
    if scale != 1.0:
        pcm = (np.frombuffer(pcm, dtype="<i2") * scale).astype("<i2").tobytes()
    return pcm + tf.silence(500)


def agent_text(clip_id: str) -> str:
    return next(c["text"] for c in MANIFEST["clips"] if c["id"] == clip_id)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("clip_id, scale, transcript, reply", [
    ("caller_refill", 1.0, "I need to refill my blood pressure prescription.", "agent_pharmacy"),
    ("caller_cannot_breathe", 1.0, "My husband can't breathe, his lips are blue.", "agent_emergency"),
    ("caller_refill", 0.8, "caller speech", "agent_ack"),  # not a fixture: generic transcript, default reply
])
def test_browser_envelopes_carry_recognized_text_and_reply(target, clip_id, scale, transcript, reply) -> None:
    call_id = str(uuid.uuid4())
    caller = tf.Caller(f"{target.ws_base}/api/v1/browser/conversation?call_id={call_id}")
    try:
        caller.stream(tf.browser_frames(clip_pcm(clip_id, scale)), 32)
        caller.wait_for(lambda r: r.json.get("type") == "audio_data" and r.json["is_final"], 8)
    finally:
        caller.close()
    messages = [r.json for r in caller.messages() if r.json is not None]
    finals = [m["payload"]["content"] for m in messages if m["type"] == "event" and m["payload"].get("type") == "user"]
    assert len(finals) == 1 and finals[0].startswith(transcript), finals
    words = "".join(m["payload"]["content"] for m in messages if m["type"] == "assistant_streaming")
    assert words == agent_text(reply)
    turn = target.truth(call_id)["turns"][0]
    assert turn["agent_clip"] == reply and turn["transcript"] == finals[0]


@pytest.mark.timeout(40)
@pytest.mark.parametrize("protocol, topical", [("acs", ("caller_twisted_ankle", "agent_injury")),
                                               ("twilio", ("caller_hopeless", "agent_crisis"))])
def test_telephony_sockets_answer_relevantly(target, protocol, topical) -> None:
    call_id = str(uuid.uuid4())
    turns = [topical, ("caller_yes", "agent_question")]  # the second has no topic: the default of turn 2
    if protocol == "acs":
        caller = tf.Caller(f"{target.ws_base}/api/v1/media/stream?call_connection_id={call_id}")
        encode, decode = tf.acs_frames, tf.acs_audio
    else:
        caller = tf.Caller(f"{target.ws_base}/audio-stream")
        caller.send_text(json.dumps({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA" + uuid.uuid4().hex,
                                                                  "customParameters": {"call_id": call_id}}}))
        encode, decode = (lambda pcm: tf.twilio_frames(pcm, "MZ1")), tf.twilio_audio
    try:
        for clip_id, reply in turns:
            sent_at = caller.stream(encode(clip_pcm(clip_id)), 20)
            frames = -(-next(c["duration_ms"] for c in MANIFEST["clips"] if c["id"] == reply) // 40)
            tf.wait_until(lambda: len(caller.messages(lambda r: r.t >= sent_at and decode(r) is not None)) >= frames,
                          10, what=f"all {frames} frames of the reply to {clip_id}")
    finally:
        caller.close()
    truth = tf.wait_until(lambda: (t := target.truth(call_id))["status"] == "ended" and t, 5, what="call end")
    got = [(t["transcript"], t["agent_clip"]) for t in truth["turns"]]
    assert got == [(clip_by_id(clip_id).text, reply) for clip_id, reply in turns]
