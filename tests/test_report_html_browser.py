"""report.html in a real browser (headless Chromium): renders with no console errors, makes no request
outside the file itself, and shows the SLO table."""

from __future__ import annotations

import shutil

import pytest

from reporting.writer import write_run_outputs
from tests.test_reporting_render import report  # noqa: F401  (the fixture: a full report dict)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_report_html_renders_self_contained_in_chromium(report, tmp_path):  # noqa: F811
    write_run_outputs(report, tmp_path / "run", latest=False)
    page_url = (tmp_path / "run" / "report.html").as_uri()
    errors, outside = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url) if r.url != page_url and not r.url.startswith("data:") else None)
            page.goto(page_url, wait_until="load")
            slo = page.locator("section#slo table")
            assert slo.is_visible()
            assert "voice_loop" in slo.inner_text()
            assert page.locator("svg").count() >= 1  # the charts are inline SVG
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
