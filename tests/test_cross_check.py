"""Pairing client turns with the server's per-turn record (pure)."""

from types import SimpleNamespace

import pytest

from users.cross_check import client_minus_server


def test_deltas_pair_answered_turns_in_order():
    client = [SimpleNamespace(first_audible_at=10.5), SimpleNamespace(first_audible_at=None), SimpleNamespace(first_audible_at=14.0)]
    server = {"turns": [{"first_audio_sent_ms": 498.0, "agent_speech_start_ms": 0},
                        {"cancelled": True, "first_audio_sent_ms": None},
                        {"first_audio_sent_ms": 3940.0, "agent_speech_start_ms": 60}]}
    assert client_minus_server(client, 10.0, server) == pytest.approx([2.0, 0.0])


def test_mismatched_turn_counts_claim_nothing():
    client = [SimpleNamespace(first_audible_at=10.5)]
    assert client_minus_server(client, 10.0, {"turns": []}) == []
    assert client_minus_server(client, 10.0, {"turns": [{"first_audio_sent_ms": 1.0}] * 2}) == []
