"""The real azure-cosmos SDK against a real local Cosmos SQL-API server (`@vercel/cosmosdb-server` under
node, started by orchestrator.cosmos_server on 127.0.0.1), and CosmosUser's failure accounting.
CosmosUser under Locust against that server is in tests/test_backend_inprocess.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orchestrator.cosmos_server import CosmosServer
from orchestrator.local_stack import REPO_ROOT, StackError



def test_local_server_speaks_the_sql_api_to_the_real_sdk(cosmos):
    from azure.cosmos import CosmosClient, PartitionKey

    assert cosmos.endpoint.startswith("http://127.0.0.1:") and cosmos.key not in repr(cosmos)
    client = CosmosClient(cosmos.endpoint, credential=cosmos.key, enable_endpoint_discovery=False)
    container = client.create_database_if_not_exists("smoke").create_container_if_not_exists(
        "sessions", partition_key=PartitionKey(path="/session_id"))
    container.upsert_item({"id": "s1", "session_id": "s1", "caller": "+15550100001", "chat_history": ["hi"]})
    container.upsert_item({"id": "s1", "session_id": "s1", "caller": "+15550100001", "chat_history": ["hi", "hello"]})
    assert float(container.client_connection.last_response_headers["x-ms-request-charge"]) > 0
    assert container.read_item("s1", partition_key="s1")["chat_history"] == ["hi", "hello"]
    found = list(container.query_items("SELECT * FROM c WHERE c.caller = @caller",
                                       parameters=[{"name": "@caller", "value": "+15550100001"}],
                                       enable_cross_partition_query=True))
    assert [item["id"] for item in found] == ["s1"]
    assert list(container.query_items("SELECT * FROM c WHERE c.caller = @caller",
                                      parameters=[{"name": "@caller", "value": "+15550100002"}],
                                      enable_cross_partition_query=True)) == []


def test_server_stops_and_missing_install_says_how_to_fix(tmp_path, monkeypatch):
    import urllib.request

    import orchestrator.cosmos_server as cosmos_server

    server = CosmosServer(tmp_path / "logs")
    try:
        server.start()
    except StackError as exc:
        pytest.skip(str(exc))
    endpoint = server.endpoint
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint + "/", timeout=2)
    monkeypatch.setattr(cosmos_server, "CLI", tmp_path / "missing" / "cli.js")
    with pytest.raises(StackError, match=r"npm ci --prefix stack") as info:
        CosmosServer(tmp_path / "logs2").start()
    assert "\n" not in str(info.value)


THROTTLE_CHECK = """
import json
from locust.env import Environment  # first: gevent's monkey-patching, as under Locust
from azure.cosmos.exceptions import CosmosHttpResponseError
from users.run_context import RECORDER
from users.backend_cosmos import CosmosUser

class Throttling:
    class client_connection:
        last_response_headers = {"x-ms-request-charge": "2.5"}
    def upsert_item(self, _doc):
        raise CosmosHttpResponseError(status_code=429, message="Request rate is large")
    def read_item(self, *_a, **_kw):
        return {"turns": 1}
    def query_items(self, *_a, **_kw):
        raise RuntimeError("connection reset")

user = CosmosUser(Environment(user_classes=[CosmosUser]))
user.container, user.session_id, user.caller, user.history, user.turns = Throttling(), "s", "+1", [], 0
user.turn()
print(json.dumps(RECORDER.drain()))
"""


def test_throttled_or_failing_ops_are_counted_failures_not_crashes():
    """In its own process: importing Locust monkey-patches, which must not happen inside pytest."""
    done = subprocess.run([sys.executable, "-c", THROTTLE_CHECK], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    wire = json.loads(done.stdout.strip().splitlines()[-1])
    assert wire["counters"]["cosmos_throttled"] == 1
    assert wire["metric_failures"] == {"cosmos_upsert": 1, "cosmos_query": 1}
    assert "cosmos_read" in wire["metrics"] and wire["counters"].get("cosmos_stale_results", 0) == 0
    assert any("429" in message for _kind, message, _n in wire["errors"]), wire["errors"]
    assert any("RuntimeError: connection reset" in message for _kind, message, _n in wire["errors"]), wire["errors"]
