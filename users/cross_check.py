"""Client vs server: how much of each answer's latency is network and transport, per turn."""

from __future__ import annotations

from typing import Any, Sequence


def client_minus_server(client_turns: Sequence[Any], opened_at: float, server: dict) -> list[float]:
    """For each answered turn: (client's first audible agent frame, ms since the socket opened) minus
    (server's first audible frame sent, ms since it accepted the socket). Turns pair up in order and
    only when both sides answered the same number; otherwise nothing is claimed."""
    server_turns = [t for t in server.get("turns", []) if isinstance(t, dict) and not t.get("cancelled")
                    and isinstance(t.get("first_audio_sent_ms"), (int, float))]
    answered = [t for t in client_turns if getattr(t, "first_audible_at", None) is not None]
    if not answered or len(answered) != len(server_turns):
        return []
    deltas = []
    for client, truth in zip(answered, server_turns):
        server_audible_ms = truth["first_audio_sent_ms"] + float(truth.get("agent_speech_start_ms") or 0.0)
        deltas.append((client.first_audible_at - opened_at) * 1000.0 - server_audible_ms)
    return deltas
