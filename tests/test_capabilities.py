"""What the target serves, found at preflight (orchestrator/capabilities.py): probes against real servers that
share no code with voiceload, and which users a run keeps."""

from __future__ import annotations

import http.server
import threading

import pytest

from config import load_settings
from orchestrator.capabilities import (FOUND, MISSING, NOT_CONFIGURED, UNKNOWN, Capability, absent_endpoints,
                                       backend_capabilities, fit_counts, no_call_channel, probe_target)


def statuses(capabilities: list[Capability]) -> dict[str, str]:
    return {c.name: c.status for c in capabilities}


def test_an_agent_with_only_health_start_call_and_a_media_socket(start_agent):
    """Starlette answers 404 to a REST path it lacks and 403 to an upgrade on a socket path it lacks: both read
    as missing only because a made-up path gets the same answer."""
    agent = start_agent("healthy")
    acs = probe_target(agent.url, load_settings({"api_base_url": agent.url}, env={}))
    assert statuses(acs) == {"health": FOUND, "docs": NOT_CONFIGURED, "start_call": FOUND, "inbound": MISSING,
                             "callbacks": MISSING, "call_metrics": MISSING, "media_ws": FOUND, "browser_ws": MISSING,
                             "relay_ws": MISSING}
    assert "answered HTTP 403 to the upgrade, as for a path the server does not have" in \
        next(c.why for c in acs if c.name == "relay_ws")
    twilio = probe_target(agent.url, load_settings({"api_base_url": agent.url, "profile": "twilio-media"}, env={}))
    assert statuses(twilio)["media_ws"] == FOUND and statuses(twilio)["docs"] == MISSING
    assert absent_endpoints(acs) == ["inbound", "callbacks", "call_metrics", "browser_ws", "relay_ws"]
    assert no_call_channel(acs) is None


def test_a_media_socket_that_refuses_made_up_call_ids_is_found_with_a_placed_call(start_agent):
    """An agent may refuse a call id it did not hand out exactly as it refuses an unknown path: the probe then
    places one call with the start-call route, as a caller would, before calling the socket missing."""
    agent = start_agent("healthy", "--own-call-ids")
    found = {c.name: c for c in probe_target(agent.url, load_settings({"api_base_url": agent.url}, env={}))}
    assert found["media_ws"].status == FOUND and "refuses made-up call ids" in found["media_ws"].why, found["media_ws"]
    assert found["relay_ws"].status == MISSING


class AnswersEverything(http.server.BaseHTTPRequestHandler):
    """A catch-all server (a single-page app's fallback): 200 to any path and method, no WebSocket."""

    def _ok(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_OPTIONS = _ok

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def catch_all():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_answers_every_path_alike_is_not_called_missing(catch_all):
    found = statuses(probe_target(catch_all, load_settings({"api_base_url": catch_all}, env={})))
    assert {found[name] for name in ("health", "start_call", "inbound", "callbacks", "call_metrics")} == {UNKNOWN}
    assert found["media_ws"] == MISSING  # an upgrade it refuses exactly as on a made-up path


def test_backends_count_as_configured_only_by_the_environment_or_the_config():
    bare = statuses(backend_capabilities(load_settings({"api_base_url": "http://agent.example"}, env={})))
    assert bare == {"redis": NOT_CONFIGURED, "llm": NOT_CONFIGURED, "speech": NOT_CONFIGURED, "cosmos": NOT_CONFIGURED}
    env = {"REDIS_URL": "redis://127.0.0.1:1", "OPENAI_ENDPOINT": "http://127.0.0.1:2/v1", "SPEECH_KEY": "k",
           "COSMOS_ENDPOINT": "http://127.0.0.1:3", "COSMOS_KEY": "c"}
    configured = statuses(backend_capabilities(load_settings(env=env)))
    assert configured == {"redis": FOUND, "llm": FOUND, "speech": NOT_CONFIGURED, "cosmos": FOUND}  # a key alone: no region


def caps(**status: str) -> list[Capability]:
    names = ("health", "start_call", "media_ws", "browser_ws", "relay_ws", "redis", "llm", "speech", "cosmos")
    return [Capability(name, status.get(name, FOUND), f"why {name}") for name in names]


def test_a_run_keeps_only_the_users_whose_capabilities_exist():
    counts = {"api_users": 2, "voice_users": 3, "browser_users": 1, "relay_users": 1, "redis_users": 1, "llm_users": 1,
              "speech_users": 1, "cosmos_users": 1, "integration_users": 4}
    fitted, lines = fit_counts(counts, caps(browser_ws=MISSING, relay_ws=MISSING, llm=NOT_CONFIGURED))
    assert fitted == {**counts, "voice_users": 4, "browser_users": 0, "relay_users": 0, "llm_users": 0}
    assert lines == ["1 browser caller calls by phone instead: browser_ws missing: why browser_ws",
                     "not run: 1 relay listener: relay_ws missing: why relay_ws",
                     "not run: 1 LLM user: llm not configured: why llm"]
    fitted, lines = fit_counts(counts, caps(media_ws=MISSING))  # no phone line: browser callers and flows stay
    assert (fitted["voice_users"], fitted["browser_users"], fitted["integration_users"]) == (0, 1, 4)
    no_line = caps(media_ws=MISSING, browser_ws=MISSING)
    fitted, lines = fit_counts(counts, no_line)
    assert fitted["integration_users"] == fitted["voice_users"] == fitted["browser_users"] == 0
    assert no_call_channel(no_line) == "media_ws missing: why media_ws; browser_ws missing: why browser_ws"
    fitted, lines = fit_counts(counts, caps(media_ws=UNKNOWN))  # could not tell: kept, and its failures counted
    assert fitted == counts and lines == []
