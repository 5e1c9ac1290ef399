"""Before any load: is the target there at all? One bounded health check."""

from __future__ import annotations

import time

import httpx


def check_reachable(base_url: str, health_path: str, timeout_s: float = 8.0, verify: bool = True) -> str | None:
    """None when GET health answers (any HTTP status below 500) within `timeout_s`, else the reason."""
    deadline = time.monotonic() + timeout_s
    reason = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return reason
        try:
            response = httpx.get(base_url + health_path, timeout=min(3.0, remaining), verify=verify)
            if response.status_code < 500:
                return None
            reason = f"GET {health_path} answered HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            reason = f"GET {health_path}: {exc.__class__.__name__}: {exc}" if str(exc) else f"GET {health_path}: {exc.__class__.__name__}"
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
