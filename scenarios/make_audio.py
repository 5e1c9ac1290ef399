"""Regenerate the real-speech audio fixtures and their manifest with espeak-ng and sox.

    python scenarios/make_audio.py          # synthesize missing clips, rewrite the manifest
    python scenarios/make_audio.py --force  # re-synthesize every clip (sox dithers: the bytes change)
                                            # needs: apt-get install espeak-ng sox

Caller utterances get 200 ms of leading silence (a caller takes a breath); agent replies are
trimmed to start on speech, so the target's first audible frame is its first frame. Speech
start/end in the manifest are measured on the 20 ms frame grid with the same energy threshold
the load generator and the reference target use.

Existing clips are kept byte for byte unless --force: the reference target recognizes caller
clips by the exact bytes of their frames (target/recognizer.py), and scenarios name clips by id.
Agent replies with a `topic` are what the reference target answers with when the caller's words
match that topic's keywords (target/recognizer.py TOPIC_RULES); replies without one are its
default round-robin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.pcm import DEFAULT_SPEECH_RMS, read_wav, speech_bounds_ms  # noqa: E402

AUDIO_DIR = Path(__file__).resolve().parent / "audio"
SAMPLE_RATE = 16000
CALLER_LEAD_IN_MS = 200

# (id, espeak voice, words per minute, text)
CALLER_UTTERANCES = [
    ("caller_chest_pain", "en-us", 160, "I have a sharp pain in my chest."),
    ("caller_refill", "en-gb", 170, "I need to refill my blood pressure prescription."),
    ("caller_lab_results", "en-us+f3", 150, "Are my lab results back yet?"),
    ("caller_appointment", "en-gb+m3", 175, "Can I book a follow up appointment for next week?"),
    ("caller_yes", "en-us", 165, "Yes, that's right."),
    # the medical scenarios (scenarios/*.yaml)
    ("caller_crushing_chest_pain", "en-us+m3", 175, "I have crushing chest pain and my arm is numb."),
    ("caller_pain_worse", "en-us+m3", 180, "Please hurry, the pain is getting worse."),
    ("caller_cannot_breathe", "en-gb+f3", 175, "My husband can't breathe, his lips are blue."),
    ("caller_inhaler", "en-gb+f3", 175, "He has asthma and his inhaler is not helping."),
    ("caller_throat_swelling", "en-us+f2", 170, "I ate peanuts and my throat is swelling shut."),
    ("caller_epi_pen", "en-us+f2", 175, "I used my epi pen. What now?"),
    ("caller_side_effects", "en-gb", 165, "The new medication makes me dizzy."),
    ("caller_stop_taking", "en-gb", 160, "Should I stop taking it tonight?"),
    ("caller_hopeless", "en-us+m2", 155, "I feel hopeless and I keep panicking."),
    ("caller_alone_tonight", "en-us+m2", 150, "I am scared to be alone tonight."),
    ("caller_twisted_ankle", "en-gb-scotland", 170, "I twisted my ankle and it is badly swollen."),
    ("caller_weight_on_it", "en-gb-scotland", 170, "I can walk, but it hurts to put weight on it."),
    ("caller_come_in_today", "en-gb-scotland", 170, "Can I come in to see someone today?"),
    ("caller_checkup_due", "en-us+f4", 165, "When is my annual checkup due?"),
    ("caller_fasting", "en-us+f4", 165, "Do I need to fast before the blood tests?"),
    ("caller_cholesterol", "en-us+f3", 150, "Was my cholesterol normal?"),
    ("caller_pharmacy_main_street", "en-gb", 170, "Please send it to the pharmacy on Main Street."),
    ("caller_morning_slot", "en-gb+m3", 165, "A morning slot would be better for me."),
    ("caller_connect_me", "en-us+m2", 150, "Yes, please connect me."),
    ("caller_thank_you", "en-us", 170, "Thank you, that is all I needed."),
]
# (id, espeak voice, words per minute, text, topic or None for the default round-robin)
AGENT_REPLIES = [
    ("agent_ack", "en-us+f2", 175, "I understand. Let me help you with that right away.", None),
    ("agent_question", "en-us+f2", 175, "Can you tell me when this started, and how severe it is?", None),
    ("agent_confirm", "en-us+f2", 175, "Thank you. I have noted that and will pass it to your care team.", None),
    ("agent_emergency", "en-us+f2", 185, "Please call emergency services now, or press one.", "emergency"),
    ("agent_crisis", "en-us+f2", 180, "You are not alone. A crisis counselor is joining now.", "crisis"),
    ("agent_nurse", "en-us+f2", 185, "Please pause the medication. A nurse will call you soon.", "nurse"),
    ("agent_injury", "en-us+f2", 185, "Rest it and use ice. Urgent care can see you today.", "injury"),
    ("agent_pharmacy", "en-us+f2", 185, "Your refill is on its way to the pharmacy.", "pharmacy"),
    ("agent_results", "en-us+f2", 185, "Your lab results are back. Your doctor has reviewed them.", "results"),
    ("agent_appointment", "en-us+f2", 185, "I can book that appointment for Tuesday morning.", "appointment"),
    ("agent_checkup", "en-us+f2", 185, "Your annual checkup includes blood work.", "checkup"),
]


def synthesize(voice: str, wpm: int, text: str, out: Path, lead_in_ms: int, trim_leading: bool) -> None:
    """espeak-ng -> sox: 16 kHz mono PCM16, optional leading-silence trim, then a fixed lead-in."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True)
        effects = ["rate", str(SAMPLE_RATE)]
        if trim_leading:
            effects += ["silence", "1", "0.005", "0.5%"]
        effects += ["reverse", "silence", "1", "0.005", "0.5%", "reverse"]  # trim trailing silence
        if lead_in_ms:
            effects += ["pad", f"{lead_in_ms / 1000:.3f}", "0"]
        subprocess.run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out), *effects], check=True)


def describe(clip_id: str, role: str, text: str, voice: str, wpm: int, path: Path, topic: str | None = None) -> dict:
    pcm, rate = read_wav(path)
    start, end = speech_bounds_ms(pcm, rate, 20, DEFAULT_SPEECH_RMS)
    entry = {
        "id": clip_id, "role": role, "file": str(path.relative_to(AUDIO_DIR)), "text": text, "voice": voice, "wpm": wpm,
        "sample_rate": rate, "duration_ms": len(pcm) * 1000 // (2 * rate), "speech_start_ms": start, "speech_end_ms": end,
    }
    if topic is not None:
        entry["topic"] = topic
    return entry


def main(argv: list[str] | None = None) -> int:
    force = "--force" in (sys.argv[1:] if argv is None else argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found; install it with: apt-get install espeak-ng sox", file=sys.stderr)
            return 2
    clips = []
    callers = [(*item, None) for item in CALLER_UTTERANCES]
    for role, items, lead_in, trim in (("caller", callers, CALLER_LEAD_IN_MS, True), ("agent", AGENT_REPLIES, 0, True)):
        (AUDIO_DIR / role).mkdir(parents=True, exist_ok=True)
        for clip_id, voice, wpm, text, topic in items:
            path = AUDIO_DIR / role / f"{clip_id}.wav"
            if force or not path.is_file():
                synthesize(voice, wpm, text, path, lead_in, trim)
            clips.append(describe(clip_id, role, text, voice, wpm, path, topic))
    manifest = {"schema": "voiceload.audio/1", "frame_ms": 20, "speech_rms_threshold": DEFAULT_SPEECH_RMS, "clips": clips}
    (AUDIO_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for clip in clips:
        print(f"{clip['id']:<22} {clip['duration_ms']:>5} ms  speech {clip['speech_start_ms']}-{clip['speech_end_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
