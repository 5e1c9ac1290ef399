"""RedisUser: the voice agent's per-turn Redis pattern through redis-py, against a real server.

On connect HGETALL `session:{id}`; after each turn HSET the chat history and context, PUBLISH an event
on `session:{id}` (a subscriber in the same user times its delivery), and GET/SET the call-id mapping
with a TTL. One connection pool per process (REDIS_POOL_SIZE). REDIS_URL may be redis:// or rediss://
with a password; run_load_tests.py points it at the local stack's redis-server by default.
Metrics (group `redis`): redis_hgetall, redis_hset, redis_publish, redis_set, redis_get, redis_pubsub_delivery.
"""

from __future__ import annotations

import json
import time
import uuid

import gevent
import redis
from locust import User, between, task

from users.run_context import RECORDER, emit
from users.runtime import get_settings

_POOLS: dict[str, redis.ConnectionPool] = {}


def shared_pool(url: str, size: int) -> redis.ConnectionPool:
    if url not in _POOLS:
        _POOLS[url] = redis.ConnectionPool.from_url(url, max_connections=size, socket_timeout=5, socket_connect_timeout=5)
    return _POOLS[url]


class RedisUser(User):
    wait_time = between(0.2, 0.6)
    weight = 1

    def on_start(self) -> None:
        settings = get_settings()
        if settings.redis_url is None:
            RECORDER.error("redis", "Redis user skipped: REDIS_URL is not set (run_load_tests.py sets it to the local "
                                    "stack's redis-server; for a deployment set REDIS_URL=rediss://:password@host:6380)")
            self.stop()
            return
        self.client = redis.Redis(connection_pool=shared_pool(settings.redis_url.get_secret_value(), settings.redis_pool_size))
        self.session_id = str(uuid.uuid4())
        self.call_id = str(uuid.uuid4())
        self.channel = f"session:{self.session_id}"
        self.turns = 0
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.timed("redis_subscribe", lambda: self.pubsub.subscribe(self.channel))
        self.listener = gevent.spawn(self.listen)
        self.timed("redis_hgetall", lambda: self.client.hgetall(self.channel))

    def on_stop(self) -> None:
        if getattr(self, "listener", None) is not None:
            self.listener.kill(block=True, timeout=2)  # before closing the socket it reads
            try:
                self.pubsub.close()
            except redis.RedisError:
                pass

    def timed(self, name: str, operation) -> object:
        started = time.perf_counter()
        try:
            result = operation()
        except redis.RedisError as exc:
            emit("redis", name, (time.perf_counter() - started) * 1000.0, f"{exc.__class__.__name__}: {str(exc)[:120]}")
            return None
        emit("redis", name, (time.perf_counter() - started) * 1000.0)
        return result

    def listen(self) -> None:
        """Deliveries of our own events: now - the publisher's timestamp (same process, same clock)."""
        while True:
            try:
                message = self.pubsub.get_message(timeout=1.0)
            except redis.RedisError as exc:
                RECORDER.error("redis", f"subscriber: {exc.__class__.__name__}")
                gevent.sleep(1.0)
                continue
            if message and message.get("type") == "message":
                try:
                    sent = json.loads(message["data"])["sent"]
                except (ValueError, KeyError, TypeError):
                    RECORDER.error("redis", "undecodable pub/sub message")
                    continue
                emit("redis", "redis_pubsub_delivery", (time.perf_counter() - sent) * 1000.0)
                RECORDER.count("redis_deliveries")

    @task
    def turn(self) -> None:
        self.turns += 1
        history = json.dumps([{"role": "user", "content": f"turn {n}"} for n in range(self.turns)][-20:])
        self.timed("redis_hset", lambda: self.client.hset(self.channel, mapping={
            "chat_history": history, "context": json.dumps({"turn": self.turns, "call_id": self.call_id}),
            "updated_at": time.time()}))
        event = json.dumps({"event": "turn", "turn": self.turns, "sent": time.perf_counter()})
        self.timed("redis_publish", lambda: self.client.publish(self.channel, event))
        self.timed("redis_set", lambda: self.client.set(f"call:{self.call_id}", self.session_id, ex=3600))
        self.timed("redis_get", lambda: self.client.get(f"call:{self.call_id}"))
