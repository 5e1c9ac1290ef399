"""Regenerate the real-speech audio fixtures and their manifest with espeak-ng and sox.

    python scenarios/make_audio.py          # needs: apt-get install espeak-ng sox

Caller utterances get 200 ms of leading silence (a caller takes a breath); agent replies are
trimmed to start on speech, so the target's first audible frame is its first frame. Speech
start/end in the manifest are measured on the 20 ms frame grid with the same energy threshold
the load generator and the reference target use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.audio import DEFAULT_SPEECH_RMS, read_wav, speech_bounds_ms  # noqa: E402

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
]
AGENT_REPLIES = [
    ("agent_ack", "en-us+f2", 175, "I understand. Let me help you with that right away."),
    ("agent_question", "en-us+f2", 175, "Can you tell me when this started, and how severe it is?"),
    ("agent_confirm", "en-us+f2", 175, "Thank you. I have noted that and will pass it to your care team."),
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


def describe(clip_id: str, role: str, text: str, voice: str, wpm: int, path: Path) -> dict:
    pcm, rate = read_wav(path)
    start, end = speech_bounds_ms(pcm, rate, 20, DEFAULT_SPEECH_RMS)
    return {
        "id": clip_id, "role": role, "file": str(path.relative_to(AUDIO_DIR)), "text": text, "voice": voice, "wpm": wpm,
        "sample_rate": rate, "duration_ms": len(pcm) * 1000 // (2 * rate), "speech_start_ms": start, "speech_end_ms": end,
    }


def main() -> int:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found; install it with: apt-get install espeak-ng sox", file=sys.stderr)
            return 2
    clips = []
    for role, items, lead_in, trim in (("caller", CALLER_UTTERANCES, CALLER_LEAD_IN_MS, True), ("agent", AGENT_REPLIES, 0, True)):
        (AUDIO_DIR / role).mkdir(parents=True, exist_ok=True)
        for clip_id, voice, wpm, text in items:
            path = AUDIO_DIR / role / f"{clip_id}.wav"
            synthesize(voice, wpm, text, path, lead_in, trim)
            clips.append(describe(clip_id, role, text, voice, wpm, path))
    manifest = {"schema": "voiceload.audio/1", "frame_ms": 20, "speech_rms_threshold": DEFAULT_SPEECH_RMS, "clips": clips}
    (AUDIO_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for clip in clips:
        print(f"{clip['id']:<22} {clip['duration_ms']:>5} ms  speech {clip['speech_start_ms']}-{clip['speech_end_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
