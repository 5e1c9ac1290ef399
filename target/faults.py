"""Injected HTTP faults: stall_ms before every REST answer, http_error_rate of non-health requests -> 503.

A plain ASGI middleware (cheaper than BaseHTTPMiddleware); WebSockets pass straight through.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from target.context import AppContext

HEALTH_PATHS = frozenset({"/api/v1/health", "/health", "/healthcheck"})
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
FAULT_BODY = json.dumps({"detail": "injected fault"}).encode()


class FaultInjection:
    """ASGI middleware applying the stall and error-rate fault knobs to HTTP requests."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in DOCS_PATHS:
            await self.app(scope, receive, send)
            return
        settings = self.ctx.settings
        if settings.stall_ms:
            await asyncio.sleep(settings.stall_ms / 1000.0)
        if (settings.http_error_rate and scope["path"] not in HEALTH_PATHS
                and self.ctx.fault_rng.random() < settings.http_error_rate):
            self.ctx.counters.injected_http_errors += 1
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(FAULT_BODY)).encode())]})
            await send({"type": "http.response.body", "body": FAULT_BODY})
            return
        await self.app(scope, receive, send)
