"""Audio, the ground floor: PCM16 and mu-law helpers (pcm) and the real-speech fixtures (fixtures), used by the
wire codecs (protocols/), the caller side (voice/, users/) and the reference target (target/) alike."""
