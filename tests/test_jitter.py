"""RFC 3550 jitter, underruns and real-time factor of received agent audio (pure)."""

import pytest

from voice.jitter import PlayoutStats


def feed(arrivals_ms, duration=40.0):
    stats = PlayoutStats()
    for ms in arrivals_ms:
        stats.add(ms / 1000.0, duration)
    return stats


def test_perfectly_paced_audio_has_no_jitter():
    stats = feed([i * 40 for i in range(50)])
    assert stats.jitter_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.underruns == 0
    assert stats.real_time_factor == pytest.approx(1.0)


def test_jitter_follows_rfc3550_smoothing():
    stats = feed([0, 50, 80])  # deltas: +10 ms, then -10 ms
    expected = 0.0
    for d in (10.0, 10.0):
        expected += (d - expected) / 16
    assert stats.jitter_ms == pytest.approx(expected)


def test_gap_longer_than_a_frame_is_an_underrun():
    stats = feed([0, 40, 80, 200, 240])  # 120 ms gap where 40 were due: 80 ms of silence
    assert stats.underruns == 1
    assert feed([0, 40, 115]).underruns == 0  # 35 ms late is jitter, not yet an underrun


def test_burst_faster_than_real_time():
    stats = feed([i * 10 for i in range(10)])
    assert stats.real_time_factor == pytest.approx(400 / 130)
    assert stats.underruns == 0
