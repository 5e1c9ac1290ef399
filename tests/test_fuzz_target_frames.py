"""The reference target fuzzed with malformed frames on its real sockets (hypothesis): it never crashes
or closes the socket, and it counts every bad frame exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import target_fixtures as tf

# text that is not a JSON object, and JSON objects with no kind/event key: both are never valid frames
not_an_object = st.text(max_size=200).filter(lambda t: not _is_json_object(t))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
objects_without_kind = st.dictionaries(st.text(max_size=12).filter(lambda k: k.lower() not in ("kind", "event")),
                                       json_values, max_size=5).map(json.dumps)
bad_frames = st.lists(not_an_object | objects_without_kind, min_size=1, max_size=8)
SOCKETS = {"acs": "/api/v1/media/stream", "twilio": "/audio-stream"}


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@pytest.fixture(scope="module")
def target() -> Iterator[tf.TargetServer]:
    server = tf.TargetServer("--latency-mode", "fixed")
    yield server
    server.stop()


def malformed(target: tf.TargetServer) -> int:
    return target.health()["counters"]["malformed_frames"]


@pytest.mark.parametrize("protocol", list(SOCKETS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=bad_frames)
def test_bad_text_frames_are_counted_and_the_socket_lives(target, protocol, frames):
    before = malformed(target)
    caller = tf.Caller(f"{target.ws_base}{SOCKETS[protocol]}")
    try:
        for frame in frames:
            caller.send_text(frame)
        tf.wait_until(lambda: malformed(target) >= before + len(frames), 5, what="malformed counter")
        assert not caller.closed.is_set()  # still serving this caller
    finally:
        caller.close()
    assert malformed(target) == before + len(frames)
    assert target.health()["status"] == "healthy"
