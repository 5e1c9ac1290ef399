"""The framework's DB pool per environment: the .env files, the reference target honouring them, and
an exhausted pool named as the bottleneck with the framework's advice."""

from __future__ import annotations

import pytest

from orchestrator.db_pool import POOL_KEYS, pool_findings, read_env_file
from tests.conftest import latest_report, run_cli

pytestmark = pytest.mark.long  # started early: see tests/conftest.py


@pytest.mark.parametrize("name, expected", [("development", (10, 10, 30, 1800)), ("test", (40, 20, 30, 1800)),
                                            ("production", (50, 25, 30, 1800))])
def test_env_files_hold_the_frameworks_pool_table(name, expected):
    values = read_env_file(name)
    assert tuple(int(values[key]) for key in POOL_KEYS) == expected


def test_bad_env_file_is_one_clear_error(tmp_path):
    (tmp_path / ".env.test").write_text("DB_POOL_SIZE=lots\n")
    with pytest.raises(ValueError, match="DB_POOL_SIZE must be a whole number"):
        read_env_file("test", root=tmp_path)


def test_pool_findings_name_an_exhausted_pool_only():
    pool = {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "10"}
    entry, findings = pool_findings({"db_pool_acquires": 100, "db_pool_waits": 2, "db_pool_wait_ms_max": 3}, pool)
    assert findings == [] and entry["waits"] == 2 and entry["db_pool_size"] == 10
    _, findings = pool_findings({"db_pool_acquires": 100, "db_pool_waits": 40, "db_pool_wait_ms_max": 900}, pool)
    assert len(findings) == 1 and "Raise DB_POOL_SIZE and DB_MAX_OVERFLOW (now 10 and 10)" in findings[0]
    _, findings = pool_findings({"db_pool_acquires": 5, "db_pool_timeouts": 1}, pool)
    assert "1 timed out" in findings[0]


def test_a_too_small_pool_is_found_by_a_real_run(tmp_path):
    # one connection, each context read holding it 1.5 s: 4 callers started together must queue for it
    env = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "VOICELOAD_TARGET_DB_QUERY_MS": "1500"}
    result = run_cli(["--group", "websocket", "--websocket-users", "4", "-r", "4", "-t", "10s", "--turns-per-call", "1",
                      "--results-dir", str(tmp_path)], env=env)
    assert result.returncode in (0, 1, 4), result.stdout + result.stderr
    report = latest_report(tmp_path)
    pool = report["resources"]["db_pool"]
    assert pool["db_pool_size"] == 1 and pool["acquires"] >= 4 and pool["waits"] >= 1, pool
    assert any(b.startswith("session store connection pool exhausted") for b in report["resources"]["bottlenecks"])
    assert "bottleneck: session store connection pool exhausted" in result.stdout
