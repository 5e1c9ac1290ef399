"""Short terminal summary of a report dict, printed with rich.

``render_summary`` prints one table (per metric: p50/p95/p99, SLO target, verdict) and a
verdict line with the run's headline figures and messages. ``summary_text`` returns
the same content as plain text for logs and tests. Report text is never parsed as
rich markup.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reporting.formatting import (
    DASH,
    as_list,
    as_mapping,
    as_records,
    fmt_bool,
    fmt_groups,
    fmt_int,
    fmt_num,
    fmt_pct,
    slo_status,
    text,
    verdict_of,
)

TEXT_WIDTH = 110
_SEVERITY = {"pass": 0, "no_data": 1, "miss": 2, "fail": 3}
_STATUS_LABEL = {"pass": "pass", "miss": "miss", "fail": "FAIL", "no_data": "no data"}
_STATUS_STYLE = {"pass": "green", "miss": "yellow", "fail": "bold red", "no_data": "dim"}
_VERDICT_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "unknown": "dim"}
_STATS = ("p50", "p95", "p99")


def render_summary(report: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the summary table and verdict line to ``console`` (stdout by default).

    The verdict line and each message are printed unwrapped (one line each) so logs stay greppable.
    """
    report = as_mapping(report)
    console = console or Console()
    console.print(build_table(report))
    if line := not_measured_line(report):
        console.print(line, soft_wrap=True)
    console.print(_verdict_line(report), soft_wrap=True)
    for message in _messages(as_mapping(report.get("summary"))):
        console.print(message, soft_wrap=True)


def summary_text(report: Mapping[str, Any]) -> str:
    """The same summary as plain text (no colour codes), 110 columns wide."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=TEXT_WIDTH, color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False, markup=False)
    render_summary(report, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def build_table(report: Mapping[str, Any]) -> Table:
    """The per-metric rich Table: metric, p50, p95, p99, target, verdict."""
    run = as_mapping(as_mapping(report).get("run"))
    title = f"voiceload {text(run.get('id'))} · suite {text(run.get('suite'))} · profile {text(run.get('profile'))}"
    if run.get("groups"):
        title += f" · groups {fmt_groups(run)}"
    title = Text(title)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("metric")
    for stat in _STATS:
        table.add_column(stat, justify="right")
    table.add_column("target")
    table.add_column("verdict")
    rows = metric_rows(report)
    for row in rows:
        style = _STATUS_STYLE.get(row["status"], "")
        table.add_row(
            Text(row["metric"]), *(Text(row[s]) for s in _STATS), Text(row["target"]),
            Text(row["verdict"], style=style),
        )
    if not rows:
        table.add_row(Text("no data", style="dim"), *(Text(DASH) for _ in _STATS), Text(DASH), Text(DASH))
    return table


def metric_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """Table rows: metrics with an SLO first (in SLO order), then the other metrics."""
    report = as_mapping(report)
    metrics = {str(k): as_mapping(v) for k, v in as_mapping(report.get("metrics")).items()}
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for entry in as_records(report.get("slo")):
        by_metric.setdefault(text(entry.get("metric")), []).append(entry)

    rows = []
    for name, entries in by_metric.items():
        if all(slo_status(e) == "no_data" for e in entries):
            continue  # never going to be measured in this run: listed apart (not_measured_line)
        stats = {s: fmt_num(metrics.get(name, {}).get(s)) for s in _STATS}
        for entry in entries:  # an SLO-only figure (no samples table) still shows its observed value
            stat = str(entry.get("stat"))
            if stat in stats and stats[stat] == DASH:
                stats[stat] = fmt_num(entry.get("observed"))
        status = max((slo_status(e) for e in entries), key=_SEVERITY.__getitem__)
        target = "; ".join(_target_text(e) for e in entries)
        rows.append({"metric": name, **stats, "target": target, "verdict": _STATUS_LABEL[status], "status": status})
    for name, m in metrics.items():
        if name not in by_metric:
            rows.append({"metric": name, **{s: fmt_num(m.get(s)) for s in _STATS},
                         "target": DASH, "verdict": DASH, "status": ""})
    return rows


def not_measured_line(report: Mapping[str, Any]) -> Text | None:
    """The SLOs this run was never going to measure (no traffic of theirs), apart from the judged ones."""
    names = [text(e.get("metric")) for e in as_records(as_mapping(report).get("slo")) if slo_status(e) == "no_data"]
    if not names:
        return None
    return Text("not measured in this run (nothing in it produces them, so not judged): " + ", ".join(dict.fromkeys(names)),
                style="dim")


def success_text(summary: Mapping[str, Any]) -> str:
    """'call success 95.0% (19 of 20 calls)', or for a run that placed no calls the request success rate."""
    rate = fmt_pct(summary.get("success_rate"))
    if summary.get("success_basis") == "calls":
        ended = summary.get("calls_ended")
        if ended is not None and summary.get("calls_not_placed"):  # an open model's calls due while too many ran
            ended += summary["calls_not_placed"]
        return f"call success {rate}" + (f" ({fmt_int(summary.get('calls_completed'))} of {fmt_int(ended)} calls)"
                                         if ended is not None else "")
    if summary.get("success_basis") == "requests":
        return f"request success {rate} (no calls in this run)"
    return f"success rate {rate}"


def _target_text(entry: Mapping[str, Any]) -> str:
    """'p95 <= 700.0', or for a whole-run rate (stat 'value') the target and what was observed."""
    if entry.get("stat") == "value":
        return f"{text(entry.get('op'))} {fmt_num(entry.get('target'))}, is {fmt_num(entry.get('observed'))}"
    return f"{text(entry.get('stat'))} {text(entry.get('op'))} {fmt_num(entry.get('target'))}"


def _verdict_line(report: Mapping[str, Any]) -> Text:
    run, summary = as_mapping(report.get("run")), as_mapping(report.get("summary"))
    verdict = verdict_of(summary)
    healthy = summary.get("generator_healthy")
    line = Text("verdict ")
    line.append(verdict.upper(), style=_VERDICT_STYLE[verdict])
    calls = ""
    if summary.get("success_basis") != "requests":
        calls = (f" · calls {fmt_int(summary.get('calls_started'))} started / {fmt_int(summary.get('calls_completed'))} "
                 f"completed / {fmt_int(summary.get('calls_failed'))} failed")
    line.append(
        f" · {success_text(summary)}"
        f" · requests {fmt_int(summary.get('requests'))} / failures {fmt_int(summary.get('failures'))}"
        f" ({fmt_pct(summary.get('error_rate'))} errors){calls} · generator "
    )
    health = fmt_bool(healthy, yes="healthy", no="OVERLOADED")
    line.append(health, style="bold red" if healthy is False else "")
    if run.get("interrupted") is True:
        line.append(" · ")
        line.append("interrupted", style="bold yellow")
    return line


def _messages(summary: Mapping[str, Any]) -> list[Text]:
    return [Text(f"  - {text(message)}") for message in as_list(summary.get("messages"))]
