"""Backend users in-process under Locust (Environment + LocalRunner, tests/inprocess_locust.py) against real
local servers: redis-py against redis-server, the openai SDK against the reference target's modelled
endpoint, the Speech SDK against the target's USP stand-in, azure-cosmos against the npm Cosmos server.
Each test checks Locust's own request stats and the exact samples the recorder kept, which must agree.

The run happens in a fresh process (Locust imported first): importing Locust inside pytest would
monkey-patch after ssl was imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.local_stack import REPO_ROOT
from target.settings import Settings as TargetSettings

SCRIPT = REPO_ROOT / "tests" / "inprocess_locust.py"
# settings the users read from the environment; each test passes only its own
SETTING_PREFIXES = ("REDIS_", "OPENAI_", "AZURE_OPENAI_", "SPEECH_", "COSMOS_", "VOICELOAD_", "API_BASE_URL",
                    "WS_BASE_URL")
REDIS_METRICS = ("redis_hgetall", "redis_hset", "redis_publish", "redis_set", "redis_get", "redis_pubsub_delivery")
COSMOS_METRICS = ("cosmos_upsert", "cosmos_read", "cosmos_query")


def run_users(classes: str, host: str, users: int, seconds: float, env: dict[str, str] | None = None,
              *extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Run tests/inprocess_locust.py; (its JSON result, the finished process)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    done = subprocess.run([sys.executable, str(SCRIPT), "--host", host, "--classes", classes, "--users", str(users),
                           "--seconds", str(seconds), *extra],
                          cwd=REPO_ROOT, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=seconds + 60)
    assert done.returncode == 0 and done.stdout.strip(), (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["stopped_in_time"] is True
    return result, done


def assert_measured(result: dict, group: str, names: tuple[str, ...]) -> None:
    """Each metric has requests and no failures, in Locust's stats and in the exact recorder, with equal counts."""
    for name in names:
        row = result["locust_stats"].get(f"{group} {name}")
        assert row is not None, (name, sorted(result["locust_stats"]))
        assert row["num_requests"] > 0 and row["num_failures"] == 0, (name, row, result["errors"])
        metric = result["metrics"].get(name, {})
        assert metric.get("count") == row["num_requests"] and metric.get("failures") == 0, (name, metric, row)


@pytest.mark.priority  # the modelled first-token time, to within a few milliseconds
def test_redis_and_llm_users_measure_real_services(start_stack):
    stack = start_stack("--latency-mode", "fixed", "--llm-ttft-ms", "150", "--llm-tokens-per-s", "50", "--llm-slots", "100")
    result, _ = run_users("RedisUser,LLMUser", stack.base_url, 4, 8,
                          {"REDIS_URL": stack.redis_url, "OPENAI_ENDPOINT": stack.base_url + "/v1"})
    metrics = result["metrics"]
    assert_measured(result, "redis", REDIS_METRICS)
    assert_measured(result, "openai", ("llm_ttft", "llm_total"))
    assert result["errors"] == [] and result["summary"]["success_rate"] == 100.0, result["errors"]
    # every delivery is one of the user's own publishes, timed by its subscriber
    assert result["counters"]["redis_deliveries"] == metrics["redis_pubsub_delivery"]["count"]
    assert metrics["redis_pubsub_delivery"]["count"] <= metrics["redis_publish"]["count"]
    # modelled: first token 150 ms after the request (plus HTTP and SDK overhead), then 50 tokens/s
    assert 150 <= metrics["llm_ttft"]["p50"] <= 180, metrics["llm_ttft"]
    assert 150 <= result["locust_stats"]["openai llm_ttft"]["median"] <= 190, result["locust_stats"]["openai llm_ttft"]
    assert metrics["llm_token_interval"]["p50"] == pytest.approx(20.0, abs=3), metrics["llm_token_interval"]
    assert metrics["llm_tokens_per_s"]["p50"] == pytest.approx(50.0, rel=0.1), metrics["llm_tokens_per_s"]
    assert next(s for s in result["slo"] if s["metric"] == "llm_ttft")["status"] == "pass"


def test_speech_user_drives_the_sdk_against_the_local_endpoint(start_stack):
    stack = start_stack("--latency-mode", "fixed")
    speech_host = stack.base_url.replace("http://", "ws://", 1)
    # stop timeout 0: users are stopped mid-utterance at the end, as a Locust run without --stop-timeout does
    result, _ = run_users("SpeechUser", stack.base_url, 2, 8, {"SPEECH_HOST": speech_host}, "--stop-timeout", "0")
    metrics = result["metrics"]
    assert_measured(result, "speech", ("stt_first_partial", "stt_final", "tts_first_byte"))
    assert result["errors"] == [], result["errors"]
    assert metrics["tts_total"]["count"] == metrics["tts_first_byte"]["count"]
    # Expected stt_final in fixed mode. The target runs its VAD on each 20 ms frame at its arrival (the user
    # has the SDK send every 20 ms chunk as written) and the utterance ends at the arrival of the frame that
    # completes eot_silence_ms of silence, i.e. at scheduled speech end + eot_silence_ms (+ loopback and SDK
    # transit, a few ms); speech.phrase goes out stt_final_ms later (= its p50 in fixed mode). So
    # stt_final = eot_silence_ms + stt_final_ms = 300 + 60 = 360 ms; the manifest's speech end is on a 20 ms
    # grid, so the VAD may see the end up to one frame earlier than scheduled.
    defaults = TargetSettings()
    expected = defaults.eot_silence_ms + defaults.stt_final_ms
    assert abs(metrics["stt_final"]["p50"] - expected) <= 30, (metrics["stt_final"], expected)
    # first partial: stt_partial_ms after the arrival of the first speech frame, and never before speech
    assert 0 < metrics["stt_first_partial"]["p50"] < defaults.stt_partial_ms + 100, metrics["stt_first_partial"]
    assert defaults.tts_first_byte_ms <= metrics["tts_first_byte"]["p50"] < defaults.tts_first_byte_ms + 100




def test_cosmos_user_drives_the_sdk_against_the_npm_server(cosmos, tmp_path):
    result, done = run_users("CosmosUser", "http://127.0.0.1:9", 2, 6,
                             {"COSMOS_ENDPOINT": cosmos.endpoint, "COSMOS_KEY": cosmos.key},
                             "--report-dir", str(tmp_path / "report"))
    metrics = result["metrics"]
    assert_measured(result, "cosmos", COSMOS_METRICS)
    assert result["errors"] == [] and result["counters"].get("cosmos_stale_results", 0) == 0, result["errors"]
    # one request charge per successful operation (setup is not charged per op)
    assert metrics["cosmos_request_charge"]["count"] == sum(metrics[name]["count"] for name in COSMOS_METRICS)
    assert metrics["cosmos_request_charge"]["p50"] > 0
    # the key is a secret: in no report file, nor on the console
    files = [path for path in (tmp_path / "report").rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"report.json", "report.html", "junit.xml"}
    assert cosmos.key not in done.stdout + done.stderr
    for path in files:
        assert cosmos.key.encode() not in path.read_bytes(), path


def test_speech_and_cosmos_users_without_settings_are_skipped_with_one_line():
    result, _ = run_users("SpeechUser,CosmosUser", "http://127.0.0.1:9", 4, 1)
    assert result["metrics"] == {} and result["locust_stats"] == {}, (result["metrics"], result["locust_stats"])
    speech = [e for e in result["errors"] if "SPEECH_HOST" in e["message"]]
    assert len(speech) == 1 and speech[0]["count"] == 1, result["errors"]  # two users, reported once
    cosmos = [e for e in result["errors"] if e["kind"] == "cosmos"]
    assert len(cosmos) == 1 and "COSMOS_ENDPOINT is not set" in cosmos[0]["message"], result["errors"]
    assert "\n" not in cosmos[0]["message"] and "\n" not in speech[0]["message"]
    assert len(result["errors"]) == 2, result["errors"]
