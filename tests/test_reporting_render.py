"""Tests for the report renderers: HTML page, JUnit XML and console summary."""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from reporting.console import metric_rows, render_summary, summary_text
from reporting.html_report import render_html
from reporting.junit import render_junit
from reporting.svg_chart import nice_ticks

SCRIPT = "<script>alert('x')</script>"


def _metric(group: str, count: int, base: float) -> dict:
    return {
        "group": group, "count": count, "mean": base * 1.02, "min": base * 0.9, "p50": base,
        "p90": base * 1.1, "p95": base * 1.15, "p99": base * 1.2, "max": base * 1.3, "unit": "ms",
    }


@pytest.fixture()
def report() -> dict:
    metrics = {
        "voice_loop": {"group": "voice", "count": 40, "mean": 512.3, "min": 480.1, "p50": 505.0, "p90": 560.2,
                       "p95": 580.0, "p99": 610.7, "max": 640.2, "unit": "ms"},
        "ws_handshake": {**_metric("voice", 20, 12.0), "p95": 14.44},
        "ws_ping_rtt": {**_metric("voice", 120, 3.0), "p95": 3.46},
        "frame_send_lateness": {**_metric("generator", 6000, 0.4), "p95": 0.91, "p99": 1.2, "max": 3.9},
        "api_response_time": {**_metric("api", 60, 80.0), "p95": 212.35, "p99": 250.0, "max": 300.0},
    }
    return {
        "schema": "voiceload.report/1",
        "run": {"id": "20261122-021500-quick", "started_at": "2026-11-22T02:15:00Z",
                "ended_at": "2026-11-22T02:16:01Z", "duration_s": 61.2, "suite": "quick", "test_type": None,
                "host": "http://127.0.0.1:8123", "profile": "artagent-v1", "workers": 0, "users": 6,
                "shape": None, "command": "python run_load_tests.py --suite quick", "interrupted": True,
                "locust_version": "2.47.0"},
        "summary": {"verdict": "fail", "success_rate": 72.5, "success_basis": "calls", "error_rate": 27.47,
                    "requests": 1234, "failures": 339, "calls_started": 20, "calls_ended": 20,
                    "calls_completed": 19, "calls_failed": 1, "generator_healthy": False,
                    "generator": {"frame_lateness_p99_ms": 12.4, "cpu_max_percent": 95.0,
                                  "cpu_over_90_fraction": 0.12},
                    "messages": ["success rate 72.5% is below the 80% fail threshold",
                                 "api_response_time p95 212.4 exceeds 150 by more than 50% [bold]x[/]"]},
        "metrics": metrics,
        "slo": [
            {"metric": "voice_loop", "stat": "p95", "op": "<=", "target": 700.0, "observed": 580.0,
             "passed": True, "status": "pass",
             "description": "caller end of speech -> first audible agent audio"},
            {"metric": "ws_handshake", "stat": "p95", "op": "<", "target": 150.0, "observed": 14.44,
             "passed": True, "status": "pass"},
            {"metric": "ws_ping_rtt", "stat": "p95", "op": "<", "target": 250.0, "observed": 3.46,
             "passed": True, "status": "pass"},
            {"metric": "api_response_time", "stat": "p95", "op": "<=", "target": 150.0, "observed": 212.35,
             "passed": False, "status": "fail"},
            {"metric": "llm_ttft", "stat": "p95", "op": "<=", "target": 600.0, "observed": 612.0,
             "passed": False, "status": "miss"},
            {"metric": "stt_final", "stat": "p95", "op": "<", "target": 1000.0, "observed": None,
             "passed": None, "status": "no_data"},
        ],
        "requests": [
            {"type": "POST", "name": "start_call", "count": 20, "failures": 0, "p50": 3.1, "p95": 5.0,
             "p99": 7.2, "max": 9.9, "rps": 0.33},
            {"type": "voice", "name": "voice_loop", "count": 40, "failures": 1, "p50": 505.0, "p95": 580.0,
             "p99": 610.7, "max": 640.2, "rps": 0.66},
            {"type": "GET", "name": "/api/v1/health?x=<b>", "count": 1174, "failures": 338, "p50": 80.0,
             "p95": 212.35, "p99": 250.0, "max": 300.0, "rps": 19.2},
        ],
        "phases": [{"name": "ramp", "start_s": 0, "end_s": 10, "users": 2, "success_rate": 100.0},
                   {"name": "steady", "start_s": 10, "end_s": 60, "users": 6, "success_rate": 70.1}],
        "resources": {"target": {"cpu_max_percent": 30.1, "rss_max_mb": 120.4},
                      "generator": {"cpu_max_percent": 95.0, "rss_max_mb": 90.0},
                      "bottlenecks": ["generator CPU saturated (95%)"]},
        "errors": [{"kind": "ws_closed", "message": f"socket closed mid-turn {SCRIPT}", "count": 2},
                   {"kind": "http_503", "message": "Service Unavailable", "count": 337}],
        "timeline": [
            {"t_s": 0.0, "users": 2, "rps": 10.5, "failures_per_s": 0.0, "voice_loop_p95": None},
            {"t_s": 5.0, "users": 6, "rps": 30.1, "failures_per_s": 0.2, "voice_loop_p95": 540.3},
            {"t_s": 10.0, "users": 6, "rps": 28.4, "failures_per_s": 5.5, "voice_loop_p95": 601.9},
            {"t_s": 15.0, "users": 6, "rps": 29.0, "failures_per_s": 6.1, "voice_loop_p95": 575.0},
        ],
    }


EMPTY_REPORTS = [
    {},
    {"schema": "voiceload.report/1", "run": {"id": "empty"}, "summary": {"verdict": "pass"},
     "metrics": {}, "slo": [], "requests": [], "phases": [], "resources": {"target": {}}, "errors": [],
     "timeline": []},
    {"run": None, "summary": None, "metrics": None, "slo": None, "requests": None, "phases": None,
     "resources": None, "errors": None, "timeline": None},
]


# ---------------------------------------------------------------- HTML


def test_html_metrics_and_p95_formatted(report):
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    for name, m in report["metrics"].items():
        assert f"<td>{name}</td>" in html
        assert f'<td class="num">{m["p95"]:.1f}</td>' in html
    assert ">212.3<" in html or ">212.4<" in html  # 212.35 with one decimal
    assert ">212.35<" not in html


def test_html_header_verdict_and_banners(report):
    html = render_html(report)
    assert 'class="badge verdict-fail"' in html
    assert "20261122-021500-quick" in html and "artagent-v1" in html and "61.2 s" in html
    assert 'id="interrupted"' in html
    assert 'id="generator-unhealthy"' in html and "12.4 ms" in html

    healthy = copy.deepcopy(report)
    healthy["summary"].update(verdict="pass", generator_healthy=True)
    healthy["run"]["interrupted"] = False
    html = render_html(healthy)
    assert 'class="badge verdict-pass"' in html
    assert 'id="interrupted"' not in html and 'id="generator-unhealthy"' not in html

    healthy["summary"]["verdict"] = "warn"
    assert 'class="badge verdict-warn"' in render_html(healthy)


def test_html_slo_table(report):
    html = render_html(report)
    slo = html[html.index('id="slo"'):html.index('id="metrics"')]
    assert slo.count("<tr class=\"slo-") == 5  # the judged ones; stt_final (no data) is listed apart
    assert "&lt;= 700.0" in slo and "&lt; 1000.0" not in slo
    assert 'status-pass">✓ pass' in slo
    assert 'status-fail">✗ fail' in slo
    assert 'status-miss">⚠ miss' in slo
    assert 'status-no_data' not in slo and "Not measured in this run (nothing in it produces them, so not judged): stt_final" in slo
    assert "+41.6%" in slo  # 212.35 vs 150
    assert "caller end of speech -&gt; first audible agent audio" in slo


def test_html_one_svg_per_nonempty_chart(report):
    html = render_html(report)
    assert html.count("<svg") == 3
    assert html.count("</svg>") == 3
    assert "SLO 700 ms" in html  # target reference line on the voice_loop chart
    assert "time since start (s)" in html

    no_voice = copy.deepcopy(report)
    for row in no_voice["timeline"]:
        row["voice_loop_p95"] = None
    html = render_html(no_voice)
    assert html.count("<svg") == 2
    assert "no data" in html[html.index('id="charts"'):html.index('id="requests"')]


def test_html_escapes_untrusted_text(report):
    html = render_html(report)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "/api/v1/health?x=&lt;b&gt;" in html
    assert "<script" not in html.lower()


def test_html_is_self_contained(report):
    html = render_html(report)
    assert not re.search(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "@import" not in html
    assert "<link" not in html.lower()
    assert "plotly" not in html.lower()


def test_html_tables_requests_phases_resources_errors(report):
    html = render_html(report)
    assert "start_call" in html and ">0.3<" in html  # rps 0.33
    assert "Aggregated" in html and ">1234<" in html and ">339<" in html
    assert "steady" in html and "70.1%" in html
    assert "rss_max_mb" in html and "120.4" in html
    assert "generator CPU saturated (95%)" in html
    assert "ws_closed" in html and ">337<" in html
    assert "success rate 72.5% is below the 80% fail threshold" in html


@pytest.mark.parametrize("empty", EMPTY_REPORTS)
def test_html_empty_report(empty):
    html = render_html(empty)
    assert "<svg" not in html
    assert html.count("no data") >= 5
    assert "verdict-" in html


def test_nice_ticks():
    assert nice_ticks(0, 640.2) == [0, 200, 400, 600, 800]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(5, 5)[0] <= 5 <= nice_ticks(5, 5)[-1]


# ---------------------------------------------------------------- JUnit


def _parse(xml: str) -> ET.Element:
    root = ET.fromstring(xml.encode("utf-8"))
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert [s.get("name") for s in suites] == ["voiceload.slo"]
    return suites[0]


def test_junit_cases_and_counts(report):
    suite = _parse(render_junit(report))
    cases = suite.findall("testcase")
    assert len(cases) == 6 + 2
    assert all(c.get("classname") == "voiceload.slo" for c in cases)
    names = [c.get("name") for c in cases]
    assert names[0] == "voice_loop p95 <= 700"
    assert "ws_handshake p95 < 150" in names
    assert names[-2:] == ["generator_healthy", "success_rate"]
    # api fail + llm miss + generator unhealthy + success rate 72.5 < 80
    assert suite.get("tests") == "8"
    assert suite.get("failures") == "4" == str(len(suite.findall("testcase/failure")))
    assert suite.get("skipped") == "1" == str(len(suite.findall("testcase/skipped")))
    assert suite.get("errors") == "0"
    assert float(suite.get("time")) == pytest.approx(61.2)
    assert all(float(c.get("time")) >= 0 for c in cases)


def test_junit_failure_messages(report):
    suite = _parse(render_junit(report))
    by_name = {c.get("name"): c for c in suite.findall("testcase")}
    assert by_name["voice_loop p95 <= 700"].find("failure") is None
    assert by_name["api_response_time p95 <= 150"].find("failure").get("message") == \
        "observed 212.3 > target 150.0" or by_name["api_response_time p95 <= 150"].find("failure").get(
            "message") == "observed 212.4 > target 150.0"
    assert by_name["llm_ttft p95 <= 600"].find("failure").get("message") == "observed 612.0 > target 600.0"
    assert by_name["stt_final p95 < 1000"].find("skipped").get("message") == "no samples"
    assert "12.4 ms" in by_name["generator_healthy"].find("failure").text
    assert "72.5%" in by_name["success_rate"].find("failure").get("message")


def test_junit_exact_message_from_brief():
    report = {"slo": [{"metric": "voice_loop", "stat": "p95", "op": "<=", "target": 700.0, "observed": 812.0,
                       "passed": False, "status": "miss"}],
              "summary": {"success_rate": 99.0, "generator_healthy": True}}
    suite = _parse(render_junit(report))
    case = suite.find("testcase[@name='voice_loop p95 <= 700']")
    assert case.find("failure").get("message") == "observed 812.0 > target 700.0"
    assert suite.get("failures") == "1" and suite.get("skipped") == "0" and suite.get("tests") == "3"


def test_junit_healthy_run_passes(report):
    report["summary"].update(success_rate=99.5, generator_healthy=True)
    report["slo"] = [s for s in report["slo"] if s["status"] == "pass"]
    suite = _parse(render_junit(report))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "0", "0")


def test_junit_survives_hostile_text(report):
    report["slo"][3]["metric"] = 'api "<&>" \x00\x07 ' + SCRIPT
    suite = _parse(render_junit(report))
    assert any(SCRIPT in c.get("name") for c in suite.findall("testcase"))


@pytest.mark.parametrize("empty", EMPTY_REPORTS)
def test_junit_empty_report(empty):
    suite = _parse(render_junit(empty))
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == ["generator_healthy", "success_rate"]
    assert int(suite.get("tests")) == 2 and suite.get("failures") == "0"


# ---------------------------------------------------------------- console


def test_console_text_table_and_numbers(report):
    out = summary_text(report)
    header = next(line for line in out.splitlines() if "metric" in line and "verdict" in line)
    assert re.search(r"metric\s+p50\s+p95\s+p99\s+target\s+verdict", header)
    row = next(line for line in out.splitlines() if line.strip().startswith("voice_loop"))
    assert re.search(r"voice_loop\s+505\.0\s+580\.0\s+610\.7\s+p95 <= 700\.0\s+pass", row)
    row = next(line for line in out.splitlines() if line.strip().startswith("api_response_time"))
    assert "FAIL" in row and "p95 <= 150.0" in row
    assert not any(line.strip().startswith("stt_final") for line in out.splitlines())  # not judged: listed apart
    assert "not measured in this run (nothing in it produces them, so not judged): stt_final" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("frame_send_lateness"))
    assert re.search(r"frame_send_lateness\s+0\.4\s+0\.9\s+1\.2\s+–\s+–", row)
    assert "\x1b[" not in out


def test_console_row_order(report):
    names = [r["metric"] for r in metric_rows(report)]
    assert names == ["voice_loop", "ws_handshake", "ws_ping_rtt", "api_response_time", "llm_ttft", "frame_send_lateness"]
    llm = next(r for r in metric_rows(report) if r["metric"] == "llm_ttft")
    assert llm["p95"] == "612.0" and llm["verdict"] == "miss"  # observed from the SLO when no metric entry


def test_console_verdict_line_and_messages(report):
    out = summary_text(report)
    assert "verdict FAIL" in out
    assert "call success 72.5% (19 of 20 calls)" in out
    assert "requests 1234 / failures 339 (27.5% errors)" in out
    assert "calls 20 started / 19 completed / 1 failed" in out
    assert "generator OVERLOADED" in out and "interrupted" in out
    for message in report["summary"]["messages"]:
        assert message in out  # including literal "[bold]x[/]": never parsed as markup


def test_render_summary_to_given_console(report):
    buffer = io.StringIO()
    render_summary(report, Console(file=buffer, width=120, force_terminal=True, color_system="standard"))
    out = buffer.getvalue()
    assert "voice_loop" in out and "\x1b[" in out  # coloured on a terminal


@pytest.mark.parametrize("empty", EMPTY_REPORTS)
def test_console_empty_report(empty):
    out = summary_text(empty)
    assert "no data" in out
    assert "verdict" in out


def test_junit_takes_its_thresholds_from_the_report(report):
    """A YAML override of the verdict thresholds changes junit.xml as it changes report.json."""
    report["summary"].update(success_rate=85.0, generator_healthy=False)
    by_name = {c.get("name"): c for c in _parse(render_junit(report)).findall("testcase")}
    assert by_name["success_rate"].find("failure") is None  # 85 % holds the default 80 % floor
    assert "limit 10 ms" in by_name["generator_healthy"].find("failure").text
    report["thresholds"] = {"fail_success_rate_below": 90.0, "generator_lateness_p99_ms": 5.0}
    by_name = {c.get("name"): c for c in _parse(render_junit(report)).findall("testcase")}
    assert by_name["success_rate"].find("failure").get("message") == "call success rate 85.0% < 90%"
    assert "limit 5 ms" in by_name["generator_healthy"].find("failure").text
    assert "(limit 5 ms)" in render_html(report)


def test_html_lists_what_the_target_serves(report):
    report["capabilities"] = [{"name": "media_ws", "status": "found", "why": "WebSocket /api/v1/media/stream (acs)"},
                              {"name": "relay_ws", "status": "missing", "why": "answered HTTP 404 <b>"}]
    html = render_html(report)
    table = html[html.index('id="capabilities"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 3 and "<td>relay_ws</td><td>missing</td>" in table
    assert "answered HTTP 404 &lt;b&gt;" in table  # escaped
    assert 'id="capabilities"' not in render_html({**report, "capabilities": []})
