"""Relay: every pipeline event of every call, pushed to every connected dashboard socket.

Events are JSON `{"type":"relay","call_id","event","ts","data"}`. With Redis they arrive through ONE
shared pattern subscription `session:*` (real pub/sub); without Redis the session store hands them to
the hub directly. Each client has a bounded queue; a client too slow to drain it loses events (counted).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from target.context import Counters

log = logging.getLogger("target.relay")
CLIENT_QUEUE = 1000
PATTERN = "session:*"


class RelayHub:
    """Fan-out of relay event texts to connected relay clients."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.clients: set[asyncio.Queue[str]] = set()

    def broadcast(self, text: str) -> None:
        for queue in self.clients:
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self.counters.relay_dropped += 1


async def redis_feed(client: Any, hub: RelayHub, counters: Counters) -> None:
    """Forward messages of the `session:*` pattern subscription to the hub until cancelled (shutdown).

    On a Redis error it counts the error, waits a second and subscribes again.
    """
    while True:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(PATTERN)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "pmessage" and hub.clients:
                    data = message["data"]
                    hub.broadcast(data.decode() if isinstance(data, bytes) else data)
        except (RedisError, OSError) as exc:
            counters.redis_errors += 1
            log.warning("relay subscription failed: %s", exc)
            await asyncio.sleep(1.0)
        finally:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass


async def relay_socket(ws: WebSocket) -> None:
    """Server-push socket: sends every relay event until the client goes away."""
    hub: RelayHub = ws.app.state.ctx.hub
    await ws.accept()
    queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)
    hub.clients.add(queue)

    async def pump() -> None:
        while True:  # ends when the client disconnects (cancelled below) or a send fails
            text = await queue.get()
            await ws.send_text(text)

    sender = asyncio.create_task(pump())
    try:
        while True:  # ends on the client's disconnect message
            message = await ws.receive()
            if message["type"] == "websocket.disconnect" or sender.done():
                break
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        hub.clients.discard(queue)
        sender.cancel()
