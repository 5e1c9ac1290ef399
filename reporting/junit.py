"""Render the SLO verdicts of a report dict as JUnit XML for CI systems.

One ``<testsuite name="voiceload.slo">`` holding one ``<testcase>`` per SLO entry, plus
``generator_healthy`` and ``success_rate`` test cases. Status ``miss``/``fail`` becomes
``<failure>``, ``no_data`` becomes ``<skipped>``. A failure's text gives the metric's unit and meaning
from metric_registry; thresholds come from the report's ``thresholds``. Built with ``xml.etree``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping

from metric_registry import spec
from reporting.formatting import (
    as_float,
    as_mapping,
    as_records,
    fmt_compact,
    fmt_num,
    generator_limits,
    negate_op,
    slo_status,
    text,
    threshold,
)

SUITE_NAME = "voiceload.slo"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'  # write the result as UTF-8

# Characters XML 1.0 cannot carry at all (ElementTree would write them and break parsers).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", str(value))


def render_junit(report: Mapping[str, Any]) -> str:
    """Return a JUnit XML document (``<testsuites>`` root with one ``voiceload.slo`` suite)."""
    report = as_mapping(report)
    run = as_mapping(report.get("run"))
    summary = as_mapping(report.get("summary"))
    cases = [_slo_case(entry) for entry in as_records(report.get("slo"))]
    thresholds = as_mapping(report.get("thresholds"))
    cases.append(_generator_case(summary, thresholds))
    cases.append(_success_rate_case(summary, thresholds))

    tests = len(cases)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    duration = as_float(run.get("duration_s")) or 0.0
    counts = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{duration:.3f}",
    }

    root = ET.Element("testsuites", {"name": "voiceload", **counts})
    suite_attrs = {"name": SUITE_NAME, **counts}
    if run.get("started_at"):
        suite_attrs["timestamp"] = _clean(run["started_at"])
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    properties = ET.SubElement(suite, "properties")
    for key in ("id", "suite", "test_type", "profile", "host", "users", "workers", "shape", "command"):
        if run.get(key) not in (None, ""):
            ET.SubElement(properties, "property", {"name": f"run.{key}", "value": _clean(run[key])})
    ET.SubElement(properties, "property", {"name": "verdict", "value": _clean(summary.get("verdict") or "unknown")})
    suite.extend(cases)

    ET.indent(root)
    return XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def _case(name: str) -> ET.Element:
    return ET.Element("testcase", {"classname": SUITE_NAME, "name": _clean(name), "time": "0.000"})


def _slo_case(entry: Mapping[str, Any]) -> ET.Element:
    op = text(entry.get("op")).strip()
    name = f"{text(entry.get('metric'))} {text(entry.get('stat'))} {op} {fmt_compact(entry.get('target'))}"
    case = _case(name)
    status = slo_status(entry)
    metric = spec(text(entry.get("metric")))

    def measured(key: str) -> str:
        value = entry.get(key)
        return fmt_num(value) + (f" {metric.unit}" if metric and as_float(value) is not None else "")

    detail = "\n".join(
        line for line in (
            f"status: {status}",
            f"observed: {measured('observed')}",
            f"target: {op} {measured('target')}",
            f"definition: {entry['description']}" if entry.get("description") else "",
            f"meaning: {metric.meaning}" if metric else "",
        ) if line
    )
    if status in ("miss", "fail"):
        message = f"observed {fmt_num(entry.get('observed'))} {negate_op(op)} target {fmt_num(entry.get('target'))}"
        failure = ET.SubElement(case, "failure", {"message": _clean(message), "type": f"slo_{status}"})
        failure.text = _clean(detail)
    elif status == "no_data":
        ET.SubElement(case, "skipped", {"message": "no samples"})
    return case


def _generator_case(summary: Mapping[str, Any], thresholds: Mapping[str, Any]) -> ET.Element:
    case = _case("generator_healthy")
    lateness_limit, cpu_limit = generator_limits(thresholds)
    healthy = summary.get("generator_healthy")
    generator = as_mapping(summary.get("generator"))
    if healthy is False:
        reasons = []
        lateness = as_float(generator.get("frame_lateness_p99_ms"))
        if lateness is not None:
            reasons.append(f"frame send lateness p99 {lateness:.1f} ms (limit {fmt_compact(lateness_limit)} ms)")
        cpu = as_float(generator.get("cpu_max_percent"))
        if cpu is not None:
            reasons.append(f"CPU max {cpu:.1f}% (limit {fmt_compact(cpu_limit)}%)")
        message = "load generator overloaded; figures cannot be trusted"
        failure = ET.SubElement(case, "failure", {"message": message, "type": "generator_unhealthy"})
        failure.text = _clean("\n".join(reasons)) if reasons else None
    elif healthy is not True:
        ET.SubElement(case, "skipped", {"message": "no generator health data"})
    return case


def _success_rate_case(summary: Mapping[str, Any], thresholds: Mapping[str, Any]) -> ET.Element:
    case = _case("success_rate")
    rate = as_float(summary.get("success_rate"))
    floor = threshold(thresholds, "fail_success_rate_below")
    calls = summary.get("success_basis") == "calls"
    if rate is None:
        ET.SubElement(case, "skipped", {"message": "no call ended" if calls else "no requests"})
    elif rate < floor:
        label = "call success rate" if calls else "request success rate"
        message = f"{label} {rate:.1f}% < {fmt_compact(floor)}%"
        failure = ET.SubElement(case, "failure", {"message": message, "type": "success_rate"})
        failure.text = (f"calls ended: {fmt_num(summary.get('calls_ended'), 0)}, failed: {fmt_num(summary.get('calls_failed'), 0)}"
                        if calls else
                        f"requests: {fmt_num(summary.get('requests'), 0)}, failures: {fmt_num(summary.get('failures'), 0)}")
    return case
