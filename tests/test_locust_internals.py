"""Locust internals are used only through locust_adapters/internals.py, which warns (one line) when the
installed Locust is not the major.minor it was written for.

Runs in the pytest process without importing Locust (its import would monkey-patch the process with
gevent): internals.py imports Locust only inside its functions; the one check that needs Locust imported
runs in a child process."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest

from locust_adapters import internals
from orchestrator.local_stack import REPO_ROOT

INTERNALS = "locust_adapters/internals.py"
LOAD_SIDE = ("users", "locust_adapters", "webui", "shapes", "orchestrator", "locustfile.py", "run_load_tests.py")
# each internal use, with a line that must be caught
INTERNAL_USES = {
    "private _send_stats": (r"\._send_stats\b", "environment.runner._send_stats()"),
    "raw protocol Message": (r"\bMessage\(", 'runner.server.send_to_client(Message("quit", None, worker))'),
    "locust.rpc": (r"\blocust\.rpc\b", "from locust.rpc import Message"),
    "MASTER_HEARTBEAT_TIMEOUT": (r"\bMASTER_HEARTBEAT_TIMEOUT\b", "locust.runners.MASTER_HEARTBEAT_TIMEOUT = 20"),
    "patching a shape's tick": (r"\.tick\s*=(?!=)", "shape.tick = graceful_tick"),
    "clients.missing": (r"\bclients\.missing\b", "for client in runner.clients.missing:"),
    "clients.all": (r"\bclients\.all\b", "workers = [c.id for c in runner.clients.all]"),
    "clients.values": (r"\bclients\.values\(", "for w in runner.clients.values()]"),
    "shape_greenlet": (r"\bshape_greenlet\b", "if runner.shape_greenlet is not None:"),
    "user classes count": (r"\b(?:reported_)?user_classes_count\b", "runner.reported_user_classes_count"),
    "runner.exceptions": (r"\brunner\.exceptions\b", "for e in runner.exceptions.values()"),
    "class picker flag": (r"\buserclass_picker_is_active\b", "if web_ui.userclass_picker_is_active:"),
    "Locust view names": (r"""["']locust\.(?:swarm|request_stats|index|login)["']""", 'request.endpoint != "locust.swarm"'),
}


def load_side_sources() -> dict[str, str]:
    files = []
    for name in LOAD_SIDE:
        path = REPO_ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return {str(path.relative_to(REPO_ROOT)): path.read_text() for path in files}


def internal_uses(source: str) -> list[str]:
    """'<line number>: <use>: <line>' for each internal use in the source."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        for use, (pattern, _example) in INTERNAL_USES.items():
            if re.search(pattern, line):
                found.append(f"{number}: {use}: {line.strip()}")
    return found


def test_no_locust_internal_is_used_outside_the_internals_module():
    sources = load_side_sources()
    assert INTERNALS in sources and "locustfile.py" in sources and "webui/live.py" in sources
    outside = {path: uses for path, source in sources.items() if path != INTERNALS and (uses := internal_uses(source))}
    assert not outside, f"Locust internals used outside {INTERNALS} (add a named function there): {outside}"


@pytest.mark.parametrize("use", sorted(INTERNAL_USES))
def test_the_scan_catches_each_internal_use(use):
    pattern, example = INTERNAL_USES[use]
    assert any(f": {use}: " in hit for hit in internal_uses(f"x = 1\n{example}\n")), example
    assert re.search(pattern, (REPO_ROOT / INTERNALS).read_text()), f"{INTERNALS} no longer does {use}: drop it here"


def test_the_scan_leaves_public_api_and_lookalikes_alone():
    public = ("runner.register_message(PHASE_MESSAGE, _phase)\nrunner.send_message(PHASE_MESSAGE, phase)\n"
              "MASTER_HEARTBEAT_TIMEOUT_S = 20.0\nif shape.tick == other:\nrunner.user_count, runner.worker_count\n"
              "environment.shape_class.phase\n")
    assert internal_uses(public) == []


def test_a_locust_of_another_minor_version_gets_one_warning_line(monkeypatch, caplog):
    monkeypatch.setattr(internals, "installed_locust_version", lambda: "2.48.1")
    with caplog.at_level(logging.WARNING, logger="voiceload"):
        warning = internals.check_locust_version()
    records = [r for r in caplog.records if r.name == "voiceload"]
    assert warning and len(records) == 1 and records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert "\n" not in message and "2.48.1" in message and internals.LOCUST_VERSION_WRITTEN_FOR in message
    monkeypatch.setattr(internals, "installed_locust_version", lambda: "3.47.0")  # another major, same minor
    assert internals.check_locust_version()


def test_the_installed_locust_is_the_one_written_for(caplog):
    with caplog.at_level(logging.WARNING, logger="voiceload"):
        assert internals.check_locust_version() is None, \
            f"Locust {internals.installed_locust_version()}: review {INTERNALS}, then update LOCUST_VERSION_WRITTEN_FOR"
    assert not [r for r in caplog.records if r.name == "voiceload"]
    assert internals.major_minor("2.47.0") == internals.major_minor("2.47.3.dev1") == "2.47"


INSTALL_PROBE = """
import json, locust
from locust import User
from locust.env import Environment
from locust_adapters import internals, plugin
from users.run_context import attach

class Idle(User):
    abstract = False

print(json.dumps([locust.__version__, internals.installed_locust_version()]), flush=True)
internals.installed_locust_version = lambda: "2.99.0"
environment = Environment(user_classes=[Idle], events=locust.events)
environment.create_local_runner()
attach(environment)
plugin.install(environment, lambda *_: None)
"""


def test_the_version_checked_is_locusts_own_and_installing_checks_it():
    result = subprocess.run([sys.executable, "-c", INSTALL_PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    imported, read = json.loads(result.stdout.splitlines()[-1])
    assert imported == read
    warnings = [line for line in result.stderr.splitlines() if "Locust 2.99.0 is installed" in line]
    assert len(warnings) == 1, result.stderr
