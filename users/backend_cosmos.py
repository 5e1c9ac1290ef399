"""CosmosUser: the voice agent's conversation persistence in Cosmos DB (SQL API) through the real
azure-cosmos SDK (sync client; it uses requests, so it is cooperative under Locust's gevent patching).

On start: ensure database `voiceload` / container `sessions` (partition key `/session_id`). Each turn:
upsert the session document (its chat history grows by a user and an assistant message), point-read it
back (checking it is not stale), and query the caller's sessions with a parameterized query.
COSMOS_ENDPOINT / COSMOS_KEY select the account; run_load_tests.py can point them at the local stack's
`@vercel/cosmosdb-server` (plain http: endpoint discovery is disabled). TLS is verified unless insecure.
Metrics (group `cosmos`): cosmos_setup (client + database + container, once per process), cosmos_upsert, cosmos_read, cosmos_query; cosmos_request_charge (RU per op,
from `x-ms-request-charge`); counters cosmos_throttled (HTTP 429 after the SDK's retries),
cosmos_throttle_retries (429s the SDK retried by itself) and cosmos_stale_results.
"""

from __future__ import annotations

import logging
import time
import uuid

from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos import exceptions as cosmos_exceptions
from locust import User, between, task

from users.run_context import RECORDER, emit
from users.call_setup import random_e164
from users.runtime import get_settings

DATABASE = "voiceload"
CONTAINER = "sessions"
HISTORY_LIMIT = 40  # messages kept in the document, like an agent trimming its context
QUERY_BY_CALLER = "SELECT * FROM c WHERE c.caller = @caller"

if logging.getLogger("azure").level == logging.NOTSET:
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK's per-request INFO lines would drown Locust's

_CLIENTS: dict[tuple[str, bool], CosmosClient] = {}
_CONTAINERS: dict[tuple[str, bool], object] = {}


def _client(endpoint: str, key: str, verify: bool) -> CosmosClient:
    """One client (one connection pool) per process and account."""
    if (endpoint, verify) not in _CLIENTS:
        _CLIENTS[(endpoint, verify)] = CosmosClient(
            endpoint, credential=key, connection_verify=verify, enable_endpoint_discovery=False,
            connection_timeout=10)
    return _CLIENTS[(endpoint, verify)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cosmos_exceptions.CosmosHttpResponseError):
        message = (exc.message or "").splitlines()[0] if exc.message else ""
        return f"{exc.__class__.__name__} {exc.status_code}: {message[:120]}"
    return f"{exc.__class__.__name__}: {str(exc)[:120]}"


class CosmosUser(User):
    wait_time = between(0.2, 0.6)
    weight = 1

    def on_start(self) -> None:
        settings = get_settings()
        self.container = None
        if settings.cosmos_endpoint is None or settings.cosmos_key is None:
            missing = "COSMOS_ENDPOINT" if settings.cosmos_endpoint is None else "COSMOS_KEY"
            RECORDER.error("cosmos", f"Cosmos user skipped: {missing} is not set (set COSMOS_ENDPOINT=https://<account>"
                                     ".documents.azure.com:443/ and COSMOS_KEY, or let run_load_tests.py start the local "
                                     "stack's cosmosdb-server)")
            self.stop()
            return
        self.account = (settings.cosmos_endpoint, not settings.insecure)
        self.key = settings.cosmos_key
        self.session_id = str(uuid.uuid4())
        self.caller = random_e164()
        self.history: list[dict] = []
        self.turns = 0
        self.setup()

    def setup(self) -> None:
        """The account client (one per process; it reads the account on creation) and the database and
        container (created if missing, once per process). A failure is a counted cosmos_setup failure;
        the next turn tries again."""
        if self.account in _CONTAINERS:
            self.container = _CONTAINERS[self.account]
            return
        started = time.perf_counter()
        try:
            client = _client(self.account[0], self.key.get_secret_value(), self.account[1])
            for attempt in range(3):  # users starting together may race to create the same resources
                try:
                    database = client.create_database_if_not_exists(DATABASE)
                    container = database.create_container_if_not_exists(
                        CONTAINER, partition_key=PartitionKey(path="/session_id"))
                    break
                except cosmos_exceptions.CosmosResourceExistsError:
                    if attempt == 2:
                        raise
        except Exception as exc:  # noqa: BLE001 - any failure is a counted error, never a crashed user
            emit("cosmos", "cosmos_setup", (time.perf_counter() - started) * 1000.0,
                 f"{DATABASE}/{CONTAINER}: {_describe(exc)}")
            return
        emit("cosmos", "cosmos_setup", (time.perf_counter() - started) * 1000.0)
        self.container = _CONTAINERS.setdefault(self.account, container)

    def timed(self, name: str, operation, check=None) -> object:
        started = time.perf_counter()
        try:
            result = operation()
            headers = self.container.client_connection.last_response_headers or {}  # read before any yield
            elapsed = (time.perf_counter() - started) * 1000.0
        except Exception as exc:  # noqa: BLE001
            elapsed = (time.perf_counter() - started) * 1000.0
            if isinstance(exc, cosmos_exceptions.CosmosHttpResponseError) and exc.status_code == 429:
                RECORDER.count("cosmos_throttled")
            emit("cosmos", name, elapsed, _describe(exc))
            return None
        self.note_headers(headers)
        emit("cosmos", name, elapsed)
        problem = check(result) if check is not None else None
        if problem:  # answered in time, but not with what was just written (weaker consistency, or a bug)
            RECORDER.count("cosmos_stale_results")
            RECORDER.error("cosmos", f"{name}: {problem}")
        return result

    @staticmethod
    def note_headers(headers) -> None:
        try:
            charge = headers.get("x-ms-request-charge")
            if charge is not None:
                RECORDER.record("cosmos_request_charge", float(charge), "cosmos")
            retries = headers.get("x-ms-throttle-retry-count")
            if retries and int(retries) > 0:
                RECORDER.count("cosmos_throttle_retries", int(retries))
        except (TypeError, ValueError):
            pass

    @task
    def turn(self) -> None:
        if self.container is None:  # setup failed (counted); try again
            self.setup()
            if self.container is None:
                return
        self.turns += 1
        self.history += [{"role": "user", "content": f"caller utterance {self.turns}", "ts": time.time()},
                         {"role": "assistant", "content": f"agent answer {self.turns}", "ts": time.time()}]
        self.history = self.history[-HISTORY_LIMIT:]
        document = {"id": self.session_id, "session_id": self.session_id, "caller": self.caller, "turns": self.turns,
                    "chat_history": self.history, "context": {"language": "en-US", "channel": "voice"},
                    "updated_at": time.time()}
        turns = self.turns

        def fresh(item: dict) -> str | None:
            return None if item.get("turns") == turns else "stale read (an older turn than just written)"

        def found(items: list) -> str | None:
            if any(item.get("id") == self.session_id for item in items):
                return None
            return "query by caller did not return the session just written"

        written = self.timed("cosmos_upsert", lambda: self.container.upsert_item(document)) is not None
        self.timed("cosmos_read", lambda: self.container.read_item(self.session_id, partition_key=self.session_id),
                   fresh if written else None)
        self.timed("cosmos_query", lambda: list(self.container.query_items(
            QUERY_BY_CALLER, parameters=[{"name": "@caller", "value": self.caller}],
            enable_cross_partition_query=True)), found if written else None)
