"""A second run from the web UI's start form is a run of its own (issue 13, "One run context"), in a real browser.

Start a run (load shape `sustained`, one phone caller beside the API users), stop it, change the phone-caller
count in the form (and the shape to none), start again: the second run has the new count, and its report (the
web UI's download, and report.json written at quit) holds only its own samples and phases. Locust clears its own
request statistics at every start, so they are the second run's alone: the report's figures must equal them.
Once with a local runner, once with a master and two workers (whose samples and phase are theirs until shipped).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from orchestrator.ports import free_port
from tests.test_voice_tab_browser import (_stop_process, _wait_for, browser_page, download, live, locust_web,
                                          needs_chromium, playwright)

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

FIRST_PHASE = "sustained (3 users)"


def stats_requests(url: str) -> dict:
    return httpx.get(url + "stats/requests", timeout=5).json()  # Locust keeps each answer for up to 2 s


def final_locust_stats(url: str) -> dict[tuple[str, str], dict]:
    """Locust's own request statistics of the stopped run, by (type, name); the Aggregated row under ("", "Aggregated")."""
    stats = _wait_for(lambda: (s := stats_requests(url))["state"] == "stopped" and s, 10, "Locust's stats of the stopped run")
    return {(row.get("method") or "", row["name"]): row for row in stats["stats"]}


def successes(stats: dict[tuple[str, str], dict], request_type: str, name: str) -> int:
    row = stats.get((request_type, name))
    return row["num_requests"] - row["num_failures"] if row else 0


def custom_parameters(page) -> None:
    """Open the start form's "Custom parameters" (voiceload's options), where the shape and user counts are."""
    section = page.get_by_role("button", name="Custom parameters")
    if section.get_attribute("aria-expanded") != "true":
        section.click()
    page.locator("input[name=voiceUsers]").wait_for(timeout=10_000)


def click(page, label: str) -> None:
    page.get_by_role("button", name=re.compile(f"^{label}$", re.I)).click()


def assert_only_the_second_run(report: dict, stats: dict, where: str) -> None:
    """The report holds the second run's samples alone (Locust's own figures of that run) and no phase of the first."""
    handshakes = successes(stats, "websocket", "ws_handshake")
    loops = successes(stats, "voice", "voice_loop")
    assert [phase["name"] for phase in report["phases"]] == [], f"{where}: the first run's phase in the second run's report"
    assert report["metrics"]["ws_handshake"]["count"] == handshakes > 0, (where, report["metrics"]["ws_handshake"], handshakes)
    assert report["summary"]["calls_started"] == handshakes, where  # no faults injected: one media socket per call
    assert report["metrics"]["voice_loop"]["count"] == loops > 0, (where, report["metrics"]["voice_loop"], loops)
    assert report["summary"]["requests"] == stats[("", "Aggregated")]["num_requests"], (where, report["summary"])


@needs_chromium
@pytest.mark.parametrize("workers", [0, 2], ids=["local", "two-workers"])
def test_a_second_run_from_the_start_form_has_its_new_phone_caller_count_and_only_its_own_report(start_stack, tmp_path,
                                                                                                 workers):
    stack = start_stack()
    console: list[str] = []
    master_port = str(free_port())  # not Locust's default: another test's master may hold it
    processes = ["--processes", str(workers), "--master-bind-port", master_port, "--master-port", master_port] if workers else []
    with locust_web(tmp_path, "TelephonyCaller", "ApiUser", "--host", stack.base_url, "--turns-per-call", "1",
                    "--voice-users", "1", *processes) as (url, process):
        if workers:
            _wait_for(lambda: stats_requests(url).get("worker_count") == workers, 60, "the workers connect")
        with playwright.sync_playwright() as p:
            browser, _context, page = browser_page(p, console)
            try:
                # run 1: load shape sustained, 3 users of which 1 phone caller
                page.goto(url, wait_until="load")
                page.locator("input[name=userCount]").wait_for(timeout=20_000)
                custom_parameters(page)
                page.select_option("select[name=shape]", "sustained")
                page.fill("input[name=sustainedUsers]", "3")
                page.fill("input[name=voiceUsers]", "1")
                click(page, "start")
                first = _wait_for(lambda: (s := live(url))["users"] == 3 and s["calls"]["started"] >= 1 and s, 90,
                                  "the first run places a call")
                assert first["phase"] == FIRST_PHASE, first["phase"]
                assert {k: v for k, v in first["user_classes"].items() if v} == {"TelephonyCaller": 1, "ApiUser": 2}
                click(page, "stop")
                _wait_for(lambda: live(url)["state"] == "stopped", 30, "the first run stops")

                # run 2: the same form, now 2 phone callers of 3 users, no shape
                page.get_by_role("button", name=re.compile("^new$", re.I)).wait_for(timeout=20_000)
                click(page, "new")
                page.locator("input[name=userCount]").wait_for(timeout=20_000)
                custom_parameters(page)
                page.select_option("select[name=shape]", "none")
                page.fill("input[name=userCount]", "3")
                page.fill("input[name=spawnRate]", "3")
                page.fill("input[name=voiceUsers]", "2")
                click(page, "start")
                second = _wait_for(lambda: (s := live(url))["state"] == "running" and s["users"] == 3 and s, 60,
                                   "the second run has its users")
                assert second["run"]["started_at"] >= first["run"]["started_at"]
                counts = {k: v for k, v in second["user_classes"].items() if v}
                assert counts == {"TelephonyCaller": 2, "ApiUser": 1}, f"the second run's users per class: {counts}"
                _wait_for(lambda: stats_requests(url)["user_count"] == 3, 10, "Locust's /stats/requests counts 3 users")
                _wait_for(lambda: (s := live(url))["calls"]["completed"] >= 2 and s["calls"]["started"] >= 2, 90,
                          "the second run completes two calls")
                click(page, "stop")
                _wait_for(lambda: live(url)["state"] == "stopped", 30, "the second run stops")

                stats = final_locust_stats(url)  # Locust cleared them at the second start: the second run's alone
                page.get_by_role("tab", name="Download Data").click()
                downloaded = json.loads(download(page, "Download voiceload report.json (run so far)", tmp_path / "dl-report.json"))
                assert downloaded["run"]["in_progress"] is False
                assert downloaded["run"]["started_at"] == second["run"]["started_at"]
                assert_only_the_second_run(downloaded, stats, "downloaded report.json")
            finally:
                browser.close()
        _stop_process(process)  # Locust quits and writes the last run's report
    assert console == [], console
    written = json.loads((tmp_path / "results" / "latest" / "report.json").read_text())
    assert written["run"]["started_at"] == second["run"]["started_at"]
    assert_only_the_second_run(written, stats, "report.json written at quit")
