"""metric_registry.py is the one place a metric is declared: the README table, the default SLOs, the report's
metrics and rates and every metric the code records (found by scanning the source) must all be in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import config
import metric_registry as registry
from metrics.recorder import TIMELINE_METRICS, MetricsRecorder, request_key
from orchestrator.local_stack import REPO_ROOT
from reporting.html_report import render_html
from reporting.junit import render_junit
from reporting.report import metric_summaries, rates
from scenarios.catalog import Priority

NOT_SCANNED = {"tests", "target", "results", "docs", "deploy", "stack", ".git"}  # target/: the agent's own events
# Call sites whose metric name is literal: emit(group, "name" ...), RECORDER.record("name" ...),
# observer.metric(group, "name" ...), observer.value("name" ...), self.timed("name" ...) of the backend users.
LITERAL_NAMES = (
    re.compile(r'(?<![\w.])emit\(\s*(?:"[^"]*"|[\w.]+),\s*"([^"]+)"'),
    re.compile(r'RECORDER\.record(?:_failure)?\(\s*"([^"]+)"'),
    re.compile(r'\.metric\(\s*"[^"]*",\s*"([^"]+)"'),
    re.compile(r'\.value\(\s*"([^"]+)"'),
    re.compile(r'\.timed\(\s*"([^"]+)"'),
)
# Call sites whose metric name is an expression: each must be a known pass-through (its callers' names are
# literal and scanned) or a name family the registry declares in full.
NAME_EXPRESSIONS = (
    re.compile(r'(?<![\w.])(?<!def )emit\(\s*(?:"[^"]*"|[\w.]+),\s*([^",\s][^,]*),'),
    re.compile(r'RECORDER\.record(?:_failure)?\(\s*([^",\s][^,]*),'),
    re.compile(r'\.metric\(\s*(?:"[^"]*"|[\w.]+),\s*([^",\s][^,]*),'),
    re.compile(r'\.value\(\s*([^",\s)][^,]*),'),
)
PASS_THROUGH = {
    ("locust_adapters/events.py", "name"),  # emit itself
    ("users/voice.py", "name"),  # LocustCallObserver.metric / .value: the call session's literal names
    ("users/flows.py", "name"),  # FlowObserver.metric -> LocustCallObserver.metric
    ("users/flows.py", "self.priority_metric"),  # voice_loop[<priority>]: test_every_priority_has_its_voice_loop
    ("users/backend_redis.py", "name"),  # RedisUser.timed("redis_...")
    ("users/backend_cosmos.py", "name"),  # CosmosUser.timed("cosmos_...")
}


def product_sources() -> dict[str, str]:
    return {str(path.relative_to(REPO_ROOT)): path.read_text() for path in sorted(REPO_ROOT.rglob("*.py"))
            if path.relative_to(REPO_ROOT).parts[0] not in NOT_SCANNED}


def recorded_names(source: str) -> set[str]:
    return {match for pattern in LITERAL_NAMES for match in pattern.findall(source)}


def name_expressions(source: str) -> set[str]:
    return {match.strip() for pattern in NAME_EXPRESSIONS for match in pattern.findall(source)}


def readme_table() -> str:
    section = (REPO_ROOT / "README.md").read_text().split("## What is measured", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| metric |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end]) + "\n"


def test_the_readme_table_lists_exactly_the_registry():
    table = readme_table()
    names = re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE)
    assert set(names) == set(registry.names()), (set(names) ^ set(registry.names()))
    assert table == registry.markdown_table(), "README table differs: paste `python -m metric_registry` into it"


def test_every_default_slo_names_a_declared_metric_with_the_registry_target():
    for target in config.DEFAULT_SLOS + config.Settings().slo:
        assert registry.spec(target.metric) is not None, f"SLO on undeclared metric {target.metric}"
    declared = {name: slo for name, slo in registry.default_slos()}
    assert [t.metric for t in config.DEFAULT_SLOS] == list(declared)
    for target in config.DEFAULT_SLOS:
        slo = declared[target.metric]
        assert (target.stat, target.op, target.target, target.on_miss, target.description) == \
            (slo.stat, slo.op, slo.target, slo.on_miss, slo.description)
    assert config.Settings().slo_for("voice_loop").target == 700 and config.Settings().slo_for("error_rate").target == 5


def test_every_metric_the_code_records_is_declared():
    found: dict[str, str] = {}
    for path, source in product_sources().items():
        for name in recorded_names(source):
            found.setdefault(name, path)
    assert {"voice_loop", "ws_handshake", "frame_send_lateness", "agent_real_time_factor", "redis_hset",
            "cosmos_request_charge", "llm_tokens_per_s", "tts_total"} <= set(found), "the source scan finds nothing"
    undeclared = {name: path for name, path in found.items() if registry.spec(name) is None}
    assert not undeclared, f"recorded but not declared in metric_registry.py: {undeclared}"


def test_every_computed_metric_name_is_a_known_pass_through():
    dynamic = {(path, expression) for path, source in product_sources().items()
               for expression in name_expressions(source)}
    assert dynamic - PASS_THROUGH == set(), "a metric recorded under a computed name: declare its names and list it"


def test_the_scan_would_catch_a_new_metric():
    source = 'emit("voice", "brand_new_ms", 1.0)\nRECORDER.record("other_new", 2.0, "voice")\n' \
             'self.observer.metric("voice", "third_new", 3.0)\nemit(GROUP, f"made_{up}", 1.0)\n'
    assert recorded_names(source) == {"brand_new_ms", "other_new", "third_new"}
    assert name_expressions(source) == {'f"made_{up}"'}
    assert all(registry.spec(name) is None for name in recorded_names(source))


def test_every_priority_has_its_voice_loop():
    assert registry.PRIORITIES == get_args(Priority)
    assert all(registry.spec(f"voice_loop[{p}]") for p in get_args(Priority))


def test_the_report_metrics_and_rates_are_declared_with_their_units():
    recorder = MetricsRecorder()
    recorder.record("llm_tokens_per_s", 42.0, "openai")
    recorder.record("cosmos_request_charge", 5.7, "cosmos")
    recorder.record("voice_loop", 500.0)
    recorder.record_request("GET", "/health", 12.0, False)
    summaries = metric_summaries(recorder)
    assert {name: s["unit"] for name, s in summaries.items()} == \
        {"llm_tokens_per_s": "tokens/s", "cosmos_request_charge": "RU", "voice_loop": "ms", "api_response_time": "ms"}
    assert summaries["api_response_time"]["group"] == registry.group("api_response_time") == "api"
    assert all(registry.spec(name) for name in rates(recorder) if name != "success_basis")
    assert request_key("GET", "/health") in recorder.requests


def test_declarations_are_complete_and_charted_metrics_feed_the_timeline():
    for spec in registry.METRICS:
        assert spec.meaning and spec.unit and spec.group in registry.GROUPS, spec
        assert spec.slo is None or (spec.slo.stat == "value") == (spec.unit == "%"), spec
    assert TIMELINE_METRICS == registry.charted() == ("voice_loop",)
    assert registry.unit("not_a_metric") == "ms" and registry.meaning("not_a_metric") == ""


def test_the_renderers_show_the_registry_meaning():
    report = {"metrics": {"voice_loop": {"group": "voice", "count": 3, "p95": 812.0, "unit": "ms"}},
              "slo": [{"metric": "voice_loop", "stat": "p95", "op": "<=", "target": 700.0, "observed": 812.0,
                       "passed": False, "status": "miss"}],
              "summary": {"success_rate": 99.0, "generator_healthy": True}}
    first_words = registry.meaning("voice_loop")[:40]
    assert first_words in render_html(report).replace("&#39;", "'")
    failure = next(c for c in re.findall(r"<failure[^>]*>(.*?)</failure>", render_junit(report), re.S))
    assert "observed: 812.0 ms" in failure and first_words in failure.replace("&gt;", ">")
