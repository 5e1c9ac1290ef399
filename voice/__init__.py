"""The caller side of a voice call: fixtures, the audio pacer, and the measured call session."""
