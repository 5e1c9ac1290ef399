"""The Voice SLOs tabs of Locust's web UI in a real browser (headless Chromium), against the local stack.

A swarm is started from the start form; the tab's voice_loop p95 must equal /voiceload/live.json's (both
from the exact merged samples), the page must log no console error, and the download links must give a
valid report.json / report.html / junit.xml of the run in progress. In distributed mode (master + 2
workers) the numbers must be exactly what the workers shipped. Also: `run_load_tests.py --web`'s
run_web (local stack, bind rules, clean stop) and the --web-login password check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from config import load_settings
from metrics.histogram import LatencyHistogram
from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port

pytestmark = pytest.mark.long  # started early: see tests/conftest.py

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_BASE_URL", "WS_BASE_URL", "VOICELOAD_"))}
    env.update(extra or {})
    return env


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2500:] if path.exists() else ""


def _stop_process(process: subprocess.Popen, timeout: float = 45) -> None:
    """SIGTERM (Locust quits and writes its report), then SIGKILL to its whole session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def locust_web(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """`locust -f locustfile.py` with its web UI on 127.0.0.1; yields (base url with a trailing slash, process)."""
    port = free_port()
    log_path = tmp_path / "locust.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "locust", "-f", "locustfile.py", *args, "--web-host", "127.0.0.1",
                                    "--web-port", str(port), "--results-dir", str(tmp_path / "results")],
                                   cwd=REPO_ROOT, env=_clean_env(env), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 60
            up = False
            while time.monotonic() < deadline and process.poll() is None and not up:
                try:
                    up = httpx.get(url, timeout=1).status_code in (200, 302)
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert up, f"web UI did not come up (exit code {process.poll()}): {_log_tail(log_path)}"
            yield url, process
        finally:
            _stop_process(process)


def live(url: str) -> dict:
    response = httpx.get(url + "voiceload/live.json", timeout=5)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["schema"] == "voiceload.live/1"
    return response.json()


def metric(snapshot: dict, name: str) -> dict:
    found = [m for m in snapshot["metrics"] if m["metric"] == name]
    assert len(found) == 1, f"{name} appears {len(found)} times in live.json"
    return found[0]


def tab_row(page, first_cell: str) -> list[str] | None:
    """The cells of the visible table's row whose first cell is `first_cell` (read in one go: React re-renders)."""
    return page.evaluate("""(first) => {
        for (const row of document.querySelectorAll("table tbody tr")) {
            const cells = [...row.querySelectorAll("td")].map((td) => td.innerText.trim());
            if (cells[0] === first) return cells;
        }
        return null;
    }""", first_cell)


def wait_tab_matches_json(page, url: str, deadline_s: float, min_count: int = 1) -> tuple[list[str], dict]:
    """Until the Voice SLOs tab's voice_loop row has a p95 and equals live.json's (same count, same p95).
    Both come from the same growing histograms, read a moment apart, so they are compared until one
    reading agrees; when the counts agree the p95 must too."""
    deadline = time.monotonic() + deadline_s
    seen = None
    while time.monotonic() < deadline:
        cells = tab_row(page, "voice_loop")  # Metric, Group, Count, p50, p95, p99, SLO target, Status
        if cells and cells[4] and int(cells[2]) >= min_count:
            json_row = metric(live(url), "voice_loop")
            seen = (cells, json_row)
            if int(cells[2]) == json_row["count"]:
                assert float(cells[4]) == json_row["p95"], f"same count {json_row['count']}, p95 tab {cells[4]} vs JSON {json_row}"
                return cells, json_row
        page.wait_for_timeout(250)
    raise AssertionError(f"the Voice SLOs tab never showed live.json's voice_loop within {deadline_s} s; last seen: {seen}")


def start_swarm(page, url: str, users: int, spawn_rate: int, pick: str | None = None) -> None:
    page.goto(url, wait_until="load")
    page.locator("input[name=userCount]").wait_for(timeout=20_000)
    if pick is not None:  # the class picker: leave only `pick` checked
        picker = page.locator("tr", has=page.get_by_text(pick, exact=True))
        checkboxes = page.locator("tr").filter(has=page.locator("input[type=checkbox]"))
        for index in range(checkboxes.count()):
            row = checkboxes.nth(index)
            box = row.locator("input[type=checkbox]").first
            text = row.inner_text().strip()
            if text and text != pick and box.is_checked():
                box.uncheck()
        box = picker.locator("input[type=checkbox]").first
        if not box.is_checked():
            box.check()
        assert box.is_checked()
    page.fill("input[name=userCount]", str(users))
    page.fill("input[name=spawnRate]", str(spawn_rate))
    page.get_by_role("button", name=re.compile("^start$", re.I)).click()
    page.get_by_role("tab", name="Voice SLOs").wait_for(timeout=20_000)


def download(page, link_title: str, target: Path) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("link", name=link_title).click()
    info.value.save_as(target)
    return target.read_bytes()


def browser_page(p, console: list[str]):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"{page.url}: {e}"))
    return browser, context, page


@needs_chromium
def test_voice_tab_in_chromium_matches_live_json_and_downloads(start_stack, tmp_path):
    stack = start_stack()
    console: list[str] = []
    with locust_web(tmp_path, "--class-picker", "--host", stack.base_url) as (url, process):
        with playwright.sync_playwright() as p:
            browser, context, page = browser_page(p, console)
            try:
                start_swarm(page, url, users=3, spawn_rate=3, pick="TelephonyCaller")
                page.get_by_role("tab", name="Voice SLOs").click()
                page.wait_for_url(re.compile(r"tab=voice-slos"))
                cells, json_row = wait_tab_matches_json(page, url, deadline_s=90)
                assert float(cells[4]) > 0 and cells[6] == "p95 <= 700" and cells[7] != "– no data", cells
                snapshot = live(url)
                assert {k: v for k, v in snapshot["user_classes"].items() if v} == {"TelephonyCaller": 3}
                assert snapshot["users"] == 3 and snapshot["state"] == "running"
                assert snapshot["calls"]["started"] >= 1
                assert {row[0] for row in [tab_row(page, name) for name in ("ws_handshake", "success_rate")] if row} \
                    == {"ws_handshake", "success_rate"}
                page.screenshot(path=str(tmp_path / "voice_slos_tab.png"), full_page=True)

                page.get_by_role("tab", name="Voice run").click()
                page.wait_for_url(re.compile(r"tab=voice-run"))
                page.wait_for_function("() => [...document.querySelectorAll('table tbody tr')].some("
                                       "r => r.innerText.startsWith('users'))", timeout=10_000)
                assert tab_row(page, "users")[1] == "3"
                assert tab_row(page, "generator")[1].startswith(("healthy", "OVERLOADED"))

                # the live page: the same numbers, and the inline SVG chart once a 5 s interval has passed
                live_page = context.new_page()
                live_page.on("console", lambda m: console.append(f"live page: {m.text}") if m.type == "error" else None)
                live_page.on("pageerror", lambda e: console.append(f"live page: {e}"))
                live_page.goto(url + "voiceload/", wait_until="load")
                live_page.locator("#chart svg").wait_for(timeout=30_000)
                deadline, matched = time.monotonic() + 30, None
                while matched is None and time.monotonic() < deadline:
                    shown = live_page.evaluate("() => { const r = document.querySelector('tr[data-metric=voice_loop]');"
                                               " return r && [r.querySelector('.count').textContent, r.querySelector('.p95').textContent]; }")
                    row = metric(live(url), "voice_loop")
                    if shown and int(shown[0]) == row["count"]:
                        matched = (shown, row)
                    else:
                        live_page.wait_for_timeout(250)
                assert matched is not None, "the live page never showed live.json's voice_loop"
                assert float(matched[0][1]) == matched[1]["p95"]
                live_page.screenshot(path=str(tmp_path / "voice_live_page.png"), full_page=True)

                # downloads of the run in progress, from Locust's Download Data tab
                page.get_by_role("tab", name="Download Data").click()
                report = json.loads(download(page, "Download voiceload report.json (run so far)", tmp_path / "dl-report.json"))
                assert report["schema"] == "voiceload.report/1" and report["run"]["in_progress"] is True
                assert report["metrics"]["voice_loop"]["count"] >= json_row["count"] > 0
                assert any(s["metric"] == "voice_loop" and s["observed"] is not None for s in report["slo"])
                junit = ET.fromstring(download(page, "Download voiceload junit.xml (run so far)", tmp_path / "dl-junit.xml"))
                cases = {case.get("name", "") for case in junit.iter("testcase")}
                assert junit.tag == "testsuites" and any("voice_loop" in name for name in cases), cases
                html = download(page, "Download voiceload report.html (run so far)", tmp_path / "dl-report.html").decode()
                assert html.lstrip().lower().startswith("<!doctype html") and "voice_loop" in html

                page.get_by_role("button", name=re.compile("^stop$", re.I)).click()
                deadline = time.monotonic() + 30
                while live(url)["state"] != "stopped" and time.monotonic() < deadline:
                    time.sleep(0.25)
                assert live(url)["state"] == "stopped"
            finally:
                browser.close()
        _stop_process(process)
    assert console == [], console
    for shot in ("voice_slos_tab.png", "voice_live_page.png"):
        assert (tmp_path / shot).stat().st_size > 10_000, shot
    written = json.loads((tmp_path / "results" / "latest" / "report.json").read_text())  # at quit, as before
    assert written["metrics"]["voice_loop"]["count"] >= json_row["count"]


def _shipped(dump_dir: Path) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """What the workers shipped: voice_loop samples per worker, and every metric's and counter's total."""
    per_worker, metrics, counters = {}, {}, {}
    for path in sorted(dump_dir.glob("worker-*.jsonl")):
        per_worker[path.name] = 0
        for line in path.read_text().splitlines():
            wire = json.loads(line)
            for name, data in wire["metrics"].items():
                total = LatencyHistogram.from_wire(data).total
                metrics[name] = metrics.get(name, 0) + total
                if name == "voice_loop":
                    per_worker[path.name] += total
            for name, value in wire["counters"].items():
                counters[name] = counters.get(name, 0) + value
    return per_worker, metrics, counters


@needs_chromium
def test_voice_tab_merges_two_workers_exactly(start_stack, tmp_path):
    stack = start_stack()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    console: list[str] = []
    with locust_web(tmp_path, "TelephonyCaller", "--processes", "2", "--host", stack.base_url,
                    env={"VOICELOAD_SAMPLE_DUMP_DIR": str(dumps)}) as (url, process):
        deadline = time.monotonic() + 60
        while httpx.get(url + "worker-count", timeout=5).json()["worker_count"] < 2 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert httpx.get(url + "worker-count", timeout=5).json()["worker_count"] == 2
        with playwright.sync_playwright() as p:
            browser, context, page = browser_page(p, console)
            try:
                start_swarm(page, url, users=4, spawn_rate=4)
                page.get_by_role("tab", name="Voice SLOs").click()
                wait_tab_matches_json(page, url, deadline_s=90, min_count=2)
                snapshot = live(url)
                assert snapshot["run"]["workers"] == 2 and len(snapshot["workers"]) == 2
                assert snapshot["users"] == 4
                page.get_by_role("tab", name="Voice run").click()
                page.wait_for_function("() => [...document.querySelectorAll('table tbody tr')].some("
                                       "r => r.innerText.startsWith('workers'))", timeout=10_000)
                assert tab_row(page, "workers")[1] == "2"
                page.screenshot(path=str(tmp_path / "voice_run_distributed.png"), full_page=True)
                deadline = time.monotonic() + 60  # stop once both workers have shipped voice_loop samples
                while not (len(_shipped(dumps)[0]) == 2 and all(_shipped(dumps)[0].values())) and time.monotonic() < deadline:
                    time.sleep(0.5)
                page.get_by_role("button", name=re.compile("^stop$", re.I)).click()
            finally:
                browser.close()
        deadline = time.monotonic() + 30
        while live(url)["state"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.25)
        assert live(url)["state"] == "stopped"
        # after the workers' last reports the master holds exactly what they shipped, merged
        deadline, merged, shipped = time.monotonic() + 20, None, None
        while time.monotonic() < deadline:
            merged = live(url)
            shipped = _shipped(dumps)
            if metric(merged, "voice_loop")["count"] == shipped[1].get("voice_loop"):
                break
            time.sleep(0.5)
        per_worker, shipped_metrics, shipped_counters = shipped
        assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
        for name in ("voice_loop", "ws_handshake", "frame_send_lateness"):
            assert metric(merged, name)["count"] == shipped_metrics[name], name
        assert merged["calls"]["started"] == shipped_counters["calls_started"] > 0
        assert merged["calls"]["completed"] == shipped_counters.get("calls_completed", 0)
        everything = LatencyHistogram()  # the JSON's p95 is the p95 of the union of the shipments
        for path in dumps.glob("worker-*.jsonl"):
            for line in path.read_text().splitlines():
                data = json.loads(line)["metrics"].get("voice_loop")
                if data:
                    everything.merge(LatencyHistogram.from_wire(data))
        assert metric(merged, "voice_loop")["p95"] == everything.summary()["p95"]
    assert console == [], console


def test_web_mode_refuses_an_open_bind_without_login(tmp_path, monkeypatch, capsys):
    from orchestrator.web_mode import run_web

    settings = load_settings({"results_dir": tmp_path / "results"})
    args = argparse.Namespace(web=True, web_host="0.0.0.0", web_port=free_port(), web_login=False, host=None)
    assert run_web(args, settings) == 2
    assert "--web-login" in capsys.readouterr().err
    monkeypatch.delenv("VOICELOAD_WEB_PASSWORD", raising=False)
    args.web_login = True
    assert run_web(args, settings) == 2
    assert "VOICELOAD_WEB_PASSWORD" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # nothing started, nothing written


def test_web_login_guards_the_voice_pages(tmp_path):
    with locust_web(tmp_path, "--web-login", "--host", "http://127.0.0.1:9",
                    env={"VOICELOAD_WEB_USER": "ops", "VOICELOAD_WEB_PASSWORD": "s3cret"}) as (url, _process):
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.get("voiceload/live.json").status_code in (302, 401)
            wrong = client.post("voiceload/login_submit", data={"username": "ops", "password": "nope"})
            assert wrong.status_code == 302 and "login" in wrong.headers["location"]
            assert client.get("voiceload/live.json").status_code in (302, 401)
            right = client.post("voiceload/login_submit", data={"username": "ops", "password": "s3cret"})
            assert right.status_code == 302
            assert client.get("voiceload/live.json").json()["state"] == "ready"
            before_any_load = client.get("voiceload/report.json")  # a download before any run: valid, empty
            assert before_any_load.status_code == 200 and before_any_load.json()["summary"]["requests"] == 0
            assert "Voice SLOs" in client.get("").text


def test_run_web_serves_the_local_stack_until_sigterm(tmp_path):
    """run_web as `run_load_tests.py --web` calls it: local stack, web UI on 127.0.0.1, clean stop on SIGTERM."""
    port = free_port()
    driver = ("import argparse, sys; from config import load_settings; from orchestrator.web_mode import run_web; "
              f"args = argparse.Namespace(web=True, web_port={port}, web_host='127.0.0.1', host=None, web_login=False); "
              f"sys.exit(run_web(args, load_settings({{'results_dir': {str(tmp_path / 'results')!r}}})))")
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO_ROOT, env=_clean_env({"PYTHONPATH": str(REPO_ROOT)}),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output: list[str] = []

    def read_until(marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            output.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no {marker!r} within {timeout} s: {''.join(output)}")

    url, target = f"http://127.0.0.1:{port}/", None
    try:
        stack_line = read_until("local target at", 60)
        read_until("web UI at", 90)
        target = re.search(r"local target at (http://127\.0\.0\.1:\d+)", stack_line).group(1)
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200 and "Voice SLOs" in page.text and "TelephonyCaller" in page.text
        assert f'"host": "{target}"' in page.text or target in page.text  # the form starts the swarm against the stack
        assert live(url)["state"] == "ready"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(output)
    finally:
        _stop_process(process, timeout=60)
    for gone in (url, target + "/api/v1/health"):  # the web UI and the local stack are stopped
        with pytest.raises(httpx.HTTPError):
            httpx.get(gone, timeout=2)
    assert list((tmp_path / "results").glob("*-web/report.json")), "".join(output)


def _count(url: str, name: str) -> int:
    found = [m for m in live(url)["metrics"] if m["metric"] == name]
    return found[0]["count"] if found else 0


def _wait_for(condition, deadline_s: float, what: str):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.25)  # polling the live endpoint: the web UI has no push channel to wait on
    raise AssertionError(f"not within {deadline_s} s: {what}")


def test_reset_and_a_second_run_start_the_voice_figures_afresh(start_stack, tmp_path):
    """Locust's RESET STATS and a new run from the start form clear its own tables; the voice figures
    (exact samples, timeline, run start) must follow, or a second run is reported with the first."""
    stack = start_stack()
    swarm = {"user_count": "4", "spawn_rate": "4", "host": stack.base_url, "user_classes": ["TelephonyCaller"]}
    with locust_web(tmp_path, "--host", stack.base_url, "--turns-per-call", "1") as (url, _process):
        assert httpx.post(url + "swarm", data=swarm, timeout=10).json()["success"]
        first_start = _wait_for(lambda: live(url)["run"]["started_at"], 20, "the run starts")
        before = _wait_for(lambda: (n := _count(url, "voice_loop")) >= 3 and n, 60, "three voice loops")
        assert httpx.post(url + "stats/reset", timeout=10).status_code == 200
        assert _count(url, "voice_loop") < before  # a turn may just have ended, never all of the earlier ones
        at_stop = _wait_for(lambda: (n := _count(url, "voice_loop")) >= 2 and n, 60, "two voice loops after the reset")
        assert httpx.post(url + "stop", timeout=30).json()["success"]
        _wait_for(lambda: live(url)["state"] == "stopped", 30, "the run stops")
        time.sleep(1.1)  # run starts are logged to the second: let the clock move on
        assert httpx.post(url + "swarm", data=swarm, timeout=10).json()["success"]
        second = _wait_for(lambda: (snapshot := live(url))["state"] in ("spawning", "running") and snapshot, 20, "run 2")
        assert second["run"]["started_at"] > first_start, (first_start, second["run"])
        assert _count(url, "voice_loop") < at_stop  # the first run's samples are gone from the second's figures
        _wait_for(lambda: _count(url, "voice_loop") >= 1, 60, "a voice loop in the second run")
