"""The stress framework's per-environment database pool (.env.development / .env.test / .env.production)
and what a run says about it: were callers kept waiting for a connection?"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.local_stack import REPO_ROOT

ENVIRONMENTS = ("development", "test", "production")
POOL_KEYS = ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE")
WAIT_SHARE_LIMIT = 0.05  # more than 5 % of connection requests had to wait: the pool is too small
_LINE = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(name: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """KEY=VALUE lines of .env.<name> (comments and blank lines skipped); ValueError if it is missing
    or a pool value is not a whole number."""
    path = root / f".env.{name}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    values = {}
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path}: not KEY=VALUE: {line.strip()!r}")
        values[match.group(1)] = match.group(2)
    for key in POOL_KEYS:
        if key in values and not values[key].isdigit():
            raise ValueError(f"{path}: {key} must be a whole number, got {values[key]!r}")
    return values


def pool_findings(counters: dict[str, int], pool: dict[str, str]) -> tuple[dict, list[str]]:
    """From the target's pool counters: the report's `db_pool` entry and any bottleneck lines, with
    the framework's advice (raise DB_POOL_SIZE and DB_MAX_OVERFLOW, run again, watch production)."""
    acquires = counters.get("db_pool_acquires", 0)
    waits = counters.get("db_pool_waits", 0)
    timeouts = counters.get("db_pool_timeouts", 0)
    entry = {**{key.lower(): int(pool[key]) for key in POOL_KEYS if key in pool}, "acquires": acquires, "waits": waits,
             "wait_ms_max": counters.get("db_pool_wait_ms_max", 0), "timeouts": timeouts}
    findings = []
    if timeouts or (acquires and waits / acquires > WAIT_SHARE_LIMIT):
        size = pool.get("DB_POOL_SIZE", "?")
        overflow = pool.get("DB_MAX_OVERFLOW", "?")
        findings.append(f"session store connection pool exhausted: {waits} of {acquires} reads waited (up to "
                        f"{entry['wait_ms_max']} ms), {timeouts} timed out. Raise DB_POOL_SIZE and DB_MAX_OVERFLOW "
                        f"(now {size} and {overflow}), run the load test again, then watch the pool in production")
    return entry, findings
