"""Every use of a Locust internal, each behind one small named function: private methods, raw protocol
messages, module constants, undocumented runner and web UI attributes, Locust's view names, and the one
monkey-patch (a load shape's `tick`).

They were written against Locust LOCUST_VERSION_WRITTEN_FOR; Locust does not keep them stable between
releases. At Locust's init, locust_adapters/plugin.py `install` calls `check_locust_version`, which logs one
warning line if the installed Locust's major.minor differs: then read this file against the new Locust's
runners.py and web.py before trusting a run. Importing this module does not import Locust (whose import
monkey-patches with gevent); each function imports what it needs.
tests/test_locust_internals.py fails if the load side touches one of these anywhere else.
Locust's public API (events, Environment attributes, runner.user_count / worker_count / state / stats /
stop / quit, register_message, send_message, parsed_options, shape_class) is used directly everywhere.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable

log = logging.getLogger("voiceload")
LOCUST_VERSION_WRITTEN_FOR = "2.47"


def major_minor(version: str) -> str:
    """"2.47.0" -> "2.47"."""
    return ".".join(version.split(".")[:2])


def installed_locust_version() -> str:
    """The installed Locust's version, locust.__version__ (read from its package metadata, without importing it)."""
    return importlib.metadata.version("locust")


def check_locust_version() -> str | None:
    """The warning (also logged) if the installed Locust is not the major.minor these functions were
    written for, else None."""
    installed = installed_locust_version()
    if major_minor(installed) == LOCUST_VERSION_WRITTEN_FOR:
        return None
    warning = (f"voiceload: Locust {installed} is installed, but voiceload's use of Locust internals "
               f"(locust_adapters/internals.py) was written for Locust {LOCUST_VERSION_WRITTEN_FOR}; "
               "worker shutdown, phases and the web UI additions may misbehave")
    log.warning(warning)
    return warning


# --- worker <-> master ---------------------------------------------------------------------------------

def send_report_now(worker_runner) -> None:
    """A worker: send a report to the master now (report_to_master listeners run), not at the next interval."""
    worker_runner._send_stats()


def set_master_heartbeat_timeout(seconds: float) -> None:
    """A worker stops its users and exits after `seconds` without hearing from its master (Locust reads
    the module constant at each check; its own default is 60 s)."""
    import locust.runners

    locust.runners.MASTER_HEARTBEAT_TIMEOUT = seconds


def worker_ids(master) -> list[str]:
    """Every worker the master knows of, whatever its state."""
    return [node.id for node in master.clients.all]


def missing_worker_ids(master) -> list[str]:
    """The workers the master marked missing (no heartbeat for a while)."""
    return [node.id for node in master.clients.missing]


def worker_rows(master) -> list[dict]:
    """Each worker's id, state, users and CPU percent, as the master last heard them."""
    return [{"id": node.id, "state": node.state, "users": node.user_count, "cpu_percent": node.cpu_usage}
            for node in master.clients.values()]


def quit_worker(master, worker_id: str) -> None:
    """Tell one worker to quit, by id (a stopped worker is no longer in the master's client list)."""
    from locust.rpc import Message

    master.server.send_to_client(Message("quit", None, worker_id))


def users_per_class(runner) -> dict[str, int]:
    """Users running per class: on a master, as the workers reported them; else this process's own."""
    from locust.runners import MasterRunner

    counts = runner.reported_user_classes_count if isinstance(runner, MasterRunner) \
        else getattr(runner, "user_classes_count", {})
    return dict(counts or {})


def exceptions(runner) -> list[tuple[str, int]]:
    """Locust's exception table: (message, count) per distinct exception."""
    return [(entry["msg"], entry["count"]) for entry in runner.exceptions.values()]


# --- load shapes ---------------------------------------------------------------------------------------

def shape_is_running(runner) -> bool:
    """Whether the runner is running a load shape (Locust then refuses to change it)."""
    return runner.shape_greenlet is not None


def wrap_shape_tick(shape, wrap: Callable[[Callable], Callable], marker: str) -> bool:
    """Replace the shape instance's `tick` with `wrap(tick)`, which Locust's shape greenlet then calls; a
    tick already wrapped under `marker` is left alone. True if it wrapped."""
    if getattr(shape.tick, marker, False):
        return False
    wrapped = wrap(shape.tick)
    setattr(wrapped, marker, True)
    shape.tick = wrapped
    return True


# --- the web UI ----------------------------------------------------------------------------------------

def class_picker_active(web_ui) -> bool:
    """Whether the web UI was started with --class-picker."""
    return bool(web_ui.userclass_picker_is_active)


def is_swarm_request(request) -> bool:
    """Whether a Flask request is the web UI's start form (POST /swarm)."""
    return request.endpoint == "locust.swarm" and request.method == "POST"


def is_request_stats(request) -> bool:
    """Whether a Flask request is the web UI's poll of the request statistics (/stats/requests)."""
    return request.endpoint == "locust.request_stats"


def index_url() -> str:
    """The web UI's main page (inside a Flask request)."""
    from flask import url_for

    return url_for("locust.index")


def login_url() -> str:
    """The web UI's login page (inside a Flask request)."""
    from flask import url_for

    return url_for("locust.login")

