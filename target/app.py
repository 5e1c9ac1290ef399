"""create_app(settings): the FastAPI app serving every profile's REST routes and media sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from target.context import AppContext
from target.faults import FaultInjection
from target.media_acs import acs_media
from target.media_browser import browser_conversation
from target.media_twilio import twilio_media
from target.relay import relay_socket
from target.openai_api import router as openai_router
from target.rest import router
from target.settings import Settings
from target.speech_ws import register_speech_routes

WEBSOCKETS = {
    "/api/v1/media/stream": acs_media,
    "/ws/call/stream": acs_media,
    "/audio-stream": twilio_media,
    "/api/v1/browser/conversation": browser_conversation,
    "/ws/realtime": browser_conversation,
    "/api/v1/browser/dashboard/relay": relay_socket,
    "/ws/relay": relay_socket,
}


def create_app(settings: Settings) -> FastAPI:
    """Build the reference voice agent; agent clips are loaded and pre-encoded here, once."""
    ctx = AppContext(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.sessions.start()
        try:
            yield
        finally:
            await ctx.sessions.close()

    app = FastAPI(title="voiceload reference voice agent", version="1.0", lifespan=lifespan,
                  description="System under test for voiceload: artagent-v1, rtmedagent and twilio-media profiles.")
    app.state.ctx = ctx
    app.include_router(router)
    app.include_router(openai_router)
    for path, endpoint in WEBSOCKETS.items():
        app.add_api_websocket_route(path, endpoint)
    register_speech_routes(app)
    app.add_middleware(FaultInjection, ctx=ctx)
    return app
