"""The http_basic test type: is the agent's REST side reachable at all? Ten requests, health and docs
in turn, timed exactly, before anyone spends minutes on a load test."""

from __future__ import annotations

import time

import httpx

from config import Settings
from metrics.recorder import MetricsRecorder

REQUESTS = 10


def check_http_basic(host: str, settings: Settings, recorder: MetricsRecorder, requests: int = REQUESTS) -> dict:
    """GET the profile's health and docs endpoints `requests` times in all (alternating); every answer
    below HTTP 400 counts as reachable. Returns the test's result fields; samples go to `recorder`."""
    profile = settings.target_profile
    endpoints = [("health", profile.health.path)] + ([("docs", profile.docs.path)] if profile.docs else [])
    answered = {name: 0 for name, _ in endpoints}
    with httpx.Client(base_url=host, timeout=10.0, verify=not settings.insecure) as client:
        for number in range(requests):
            name, path = endpoints[number % len(endpoints)]
            started = time.perf_counter()
            try:
                ok = client.get(path).status_code < 400
                reason = None if ok else "HTTP error status"
            except httpx.HTTPError as exc:
                ok, reason = False, f"{exc.__class__.__name__}"
            recorder.record_request("GET", name, (time.perf_counter() - started) * 1000.0, failed=not ok)
            if ok:
                answered[name] += 1
            else:
                recorder.error("http", f"GET {name}: {reason}")
    return {"requests": requests, "reachable": {name: count > 0 for name, count in answered.items()},
            "answered": answered}
