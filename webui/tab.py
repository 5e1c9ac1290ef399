"""Voice SLOs in Locust's web UI (master or local runner; nothing on workers or headless).

Locust 2.47's web UI is a prebuilt React app. Its documented extension points (examples/extend_web_ui.py)
are template args read at page load and one hook into its own polling:

- `extended_tabs` + `extended_tables`: extra tabs, each a table whose columns we name; their rows come
  from `extended_stats` in the /stats/requests answer, which the app polls every 2 s while a test runs.
  We add that key in an after_request hook, from the same snapshot /voiceload/live.json serves. Tabs:
  "Voice SLOs" (every metric: count, p50/p95/p99 from the exact merged samples, SLO and status, and its
  unit and meaning from metric_registry) and
  "Voice run" (calls, phase, generator health, a text trend of voice_loop p95).
- `extended_csv_files`: extra links in the "Download Data" tab: report.json / report.html / junit.xml
  of the run so far, and the live page.

Those tables render text only (no markup, no components), so the chart lives on our own page,
/voiceload/ (table + inline SVG chart + downloads, polling /voiceload/live.json), linked from the
Download Data tab. Replacing Locust's React bundle (build_path / the locust-ui npm library) could put
the chart in the tab itself, but would pin voiceload to one Locust UI build; this way survives upgrades.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import weakref
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_file
from locust.env import Environment
from locust.runners import WorkerRunner

from locust_adapters import internals
from webui.downloads import current_report, render
from webui.live import DOWNLOADS, live_snapshot, metric_rows, run_rows

log = logging.getLogger("voiceload")
PAGE = Path(__file__).resolve().parent / "static" / "voice.html"
SLO_TAB, RUN_TAB = "voice-slos", "voice-run"
SNAPSHOT_TTL_S = 1.0
_INSTALLED: weakref.WeakSet[Environment] = weakref.WeakSet()

EXTENDED_TABS = [{"title": "Voice SLOs", "key": SLO_TAB}, {"title": "Voice run", "key": RUN_TAB}]
EXTENDED_TABLES = [
    {"key": SLO_TAB, "structure": [
        {"key": "metric", "title": "Metric"}, {"key": "group", "title": "Group"}, {"key": "count", "title": "Count"},
        {"key": "p50", "title": "p50"}, {"key": "p95", "title": "p95"}, {"key": "p99", "title": "p99"},
        {"key": "slo", "title": "SLO target"}, {"key": "status", "title": "Status"},
        {"key": "unit", "title": "Unit"}, {"key": "meaning", "title": "Meaning"}]},  # from metric_registry
    {"key": RUN_TAB, "structure": [{"key": "what", "title": "What"}, {"key": "value", "title": "Now"}]},
]


class _Snapshots:
    """live_snapshot, computed at most once per SNAPSHOT_TTL_S whoever asks (the tabs' polling, the live
    page, several browsers): it runs in the gevent loop, which on a local runner also sends the callers'
    audio frames, so it must not run once per poller."""

    def __init__(self, environment: Environment, clock) -> None:
        self.environment, self.clock = environment, clock
        self.taken_at = float("-inf")
        self.snapshot: dict | None = None

    def get(self) -> dict:
        now = time.monotonic()
        if self.snapshot is None or now - self.taken_at >= SNAPSHOT_TTL_S:
            self.snapshot = live_snapshot(self.environment, self.clock)
            self.taken_at = now
        return self.snapshot

    def invalidate(self, **_kw) -> None:
        """Figures were reset or a new run started: the next reader must not see the old ones."""
        self.snapshot = None


def install_voice_tab(environment: Environment, clock) -> None:
    """Register the Voice SLOs tabs, /voiceload/ (page, live.json, report downloads) on the web UI.
    A no-op without a web UI (headless, workers) and when called twice."""
    web_ui = environment.web_ui
    if web_ui is None or isinstance(environment.runner, WorkerRunner) or environment in _INSTALLED:
        return
    _INSTALLED.add(environment)
    options = environment.parsed_options
    prefix = (getattr(options, "web_base_path", None) or "").rstrip("/") + "/voiceload"
    blueprint = Blueprint("voiceload", __name__, url_prefix=prefix)
    guard = web_ui.auth_required_if_enabled
    snapshots = _Snapshots(environment, clock)
    environment.events.reset_stats.add_listener(snapshots.invalidate)
    environment.events.test_start.add_listener(snapshots.invalidate)

    @blueprint.route("/")
    @guard
    def page():
        return send_file(PAGE, mimetype="text/html", max_age=0)

    @blueprint.route("/live.json")
    @guard
    def live():
        response = jsonify(snapshots.get())
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.route("/<any(" + ", ".join(f'"{n}"' for n in DOWNLOADS) + "):name>")
    @guard
    def download(name: str):
        report = current_report(environment, clock)
        body, mimetype = render(name, report)
        response = Response(body, mimetype=mimetype)
        response.headers["Cache-Control"] = "no-store"
        if not request.args.get("inline"):
            response.headers["Content-Disposition"] = f'attachment; filename="{report["run"]["id"]}-{name}"'
        return response

    @blueprint.errorhandler(Exception)
    def failed(error):
        log.exception("voiceload web UI: %s failed", request.path)
        return jsonify({"error": f"{type(error).__name__}: {error}"}), getattr(error, "code", 500)

    if web_ui.web_login:
        from webui.auth import install_password_login

        install_password_login(environment, blueprint, prefix)
    web_ui.app.register_blueprint(blueprint)
    web_ui.app.after_request(functools.partial(_extend_stats, snapshots))
    web_ui.template_args.update({
        "extended_tabs": EXTENDED_TABS,
        "extended_tables": EXTENDED_TABLES,
        "extended_csv_files": [
            {"href": "./voiceload/", "title": "Voice SLOs live page (table, voice_loop chart, downloads)"},
            *({"href": f"./voiceload/{name}", "title": f"Download voiceload {name} (run so far)"} for name in DOWNLOADS),
        ],
    })


def _extend_stats(snapshots: _Snapshots, response: Response) -> Response:
    """Add the Voice tabs' rows to Locust's /stats/requests answer (as extend_web_ui.py does). Returns a new
    response: Locust memoizes that view's response object for 2 s, so it must not be changed in place."""
    if not internals.is_request_stats(request) or response.status_code != 200 or not response.is_json:
        return response
    try:
        snapshot = snapshots.get()
        data = response.get_json()
        data["extended_stats"] = [{"key": SLO_TAB, "data": metric_rows(snapshot)},
                                  {"key": RUN_TAB, "data": run_rows(snapshot)}]
    except Exception:  # noqa: BLE001 - never break Locust's own stats polling
        log.exception("voiceload web UI: could not add the Voice tabs' rows")
        return response
    extended = Response(json.dumps(data, default=str), status=response.status_code, mimetype="application/json")
    for header, value in response.headers.items():
        if header.lower() not in ("content-length", "content-type"):
            extended.headers[header] = value
    return extended
