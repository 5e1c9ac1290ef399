"""The caller side of a voice call: the audio pacer, chunking, jitter, faults and the measured call session."""
