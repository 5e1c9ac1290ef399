"""Session state in a real Redis (redis.asyncio, one pool) and pipeline event publishing.

Calls never wait on Redis: `save` and `publish` queue commands, and one writer task sends them in
pipelined batches. A Redis error (server gone) is counted in `redis_errors`, the batch is dropped, and
the call carries on; the health endpoint then reports the store "down". Without a Redis URL events go
straight to the in-process relay hub.

Before each reply the call reads its session context (HGETALL) through a second, bounded pool
(BlockingConnectionPool of db_pool_size + db_max_overflow connections, waiting up to db_pool_timeout_s):
the seed's DB pool. Waits and timeouts are counted, so an exhausted pool shows up as the bottleneck.

Keys: HSET `session:{call_id}` (created_at, protocol, status, session_id, turns, history, last_turn);
PUBLISH `session:{call_id}` one relay JSON event per pipeline event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from target.ground_truth import utc_now_iso
from target.relay import RelayHub, redis_feed

if TYPE_CHECKING:
    from target.context import Counters
    from target.settings import Settings

log = logging.getLogger("target.sessions")
MAX_PENDING = 100_000
BATCH = 512
EXEC_TIMEOUT_S = 2.0


def session_key(call_id: str) -> str:
    return f"session:{call_id}"


def relay_event(call_id: str, event: str, data: dict[str, Any] | None = None) -> str:
    """The JSON text of one pipeline event, as published and relayed."""
    return json.dumps({"type": "relay", "call_id": call_id, "event": event, "ts": utc_now_iso(), "data": data or {}},
                      separators=(",", ":"))


class SessionStore:
    """Queued, batched Redis writes plus the relay feed."""

    def __init__(self, redis_url: str | None, counters: Counters, hub: RelayHub, settings: Settings) -> None:
        self.counters = counters
        self.hub = hub
        self.settings = settings
        self.client: aioredis.Redis | None = None
        self.context_pool: aioredis.BlockingConnectionPool | None = None
        self._context_reads = 0  # reads holding or waiting for a pool connection
        if redis_url:
            self.client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=2.0)
            self.context_pool = aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=settings.db_pool_size + settings.db_max_overflow,
                timeout=settings.db_pool_timeout_s, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._pending: deque[tuple[str, str, Any]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def start(self) -> None:
        """Start the writer and the relay's pattern subscription (Redis only)."""
        if self.client is None:
            return
        self._tasks = [asyncio.create_task(self._writer()), asyncio.create_task(redis_feed(self.client, self.hub, self.counters))]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
        if self.context_pool is not None:
            await self.context_pool.aclose()

    async def read_context(self, call_id: str) -> None:
        """HGETALL the session through the bounded pool; count the wait for a connection. Never raises:
        a timeout or a Redis error is counted and the reply goes on without the context."""
        pool = self.context_pool
        if pool is None:
            return
        counters = self.counters
        queued = self._context_reads >= pool.max_connections  # every connection busy: this read must wait
        self._context_reads += 1
        started = time.perf_counter()
        try:
            connection = await pool.get_connection()
        except (RedisError, OSError):
            self._context_reads -= 1
            counters.db_pool_timeouts += 1
            return
        counters.db_pool_acquires += 1
        if queued:
            counters.db_pool_waits += 1
            waited_ms = (time.perf_counter() - started) * 1000.0
            counters.db_pool_wait_ms_max = max(counters.db_pool_wait_ms_max, round(waited_ms))
        try:
            await connection.send_command("HGETALL", session_key(call_id))
            await connection.read_response()
            if self.settings.db_query_ms:
                await asyncio.sleep(self.settings.db_query_ms / 1000.0)
        except (RedisError, OSError, asyncio.TimeoutError):
            counters.redis_errors += 1
            await connection.disconnect()
        finally:
            self._context_reads -= 1
            await pool.release(connection)

    def save(self, call_id: str, fields: dict[str, Any]) -> None:
        """HSET fields of the call's session hash (values: str/int/float; dicts and lists as JSON)."""
        if self.client is None:
            return
        mapping = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in fields.items() if v is not None}
        self._enqueue(("hset", session_key(call_id), mapping))

    def publish(self, call_id: str, event: str, data: dict[str, Any] | None = None) -> None:
        """Publish one pipeline event (Redis channel `session:{call_id}`, or the in-process relay)."""
        if self.client is not None:
            self._enqueue(("publish", session_key(call_id), relay_event(call_id, event, data)))
        elif self.hub.clients:
            self.hub.broadcast(relay_event(call_id, event, data))

    def _enqueue(self, command: tuple[str, str, Any]) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.counters.redis_errors += 1  # backlog full: Redis is not keeping up or is gone
            return
        self._pending.append(command)
        self._wake.set()

    async def _writer(self) -> None:
        """Send queued commands in pipelined batches until cancelled at shutdown."""
        assert self.client is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                pipe = self.client.pipeline(transaction=False)
                for op, key, value in batch:
                    if op == "hset":
                        pipe.hset(key, mapping=value)
                    else:
                        pipe.publish(key, value)
                try:
                    await asyncio.wait_for(pipe.execute(), EXEC_TIMEOUT_S)
                except (RedisError, OSError, asyncio.TimeoutError) as exc:
                    self.counters.redis_errors += 1
                    log.warning("redis batch of %d commands failed: %s", len(batch), exc)

    async def status(self) -> str:
        """ "ok", "down" or "disabled", from a live PING with a short deadline."""
        if self.client is None:
            return "disabled"
        try:
            await asyncio.wait_for(self.client.ping(), 0.5)
            return "ok"
        except (RedisError, OSError, asyncio.TimeoutError):
            return "down"
