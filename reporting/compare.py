"""The difference between two runs' reports, for a regression check in CI. Pure: dicts in, dict out."""

from __future__ import annotations

from typing import Any

STATS = ("p50", "p95", "p99")


def _change_pct(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return round(100.0 * (after - before) / before, 1)


def compare_reports(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per metric both runs have: p50/p95/p99 before, after and change in %; SLOs whose status changed;
    `regressions`: SLOs that held before and not after (what a CI gate should fail on)."""
    metrics = []
    for name in sorted(set(before.get("metrics", {})) & set(after.get("metrics", {}))):
        a, b = before["metrics"][name], after["metrics"][name]
        row = {"metric": name}
        for stat in STATS:
            row[stat] = {"before": a.get(stat), "after": b.get(stat), "change_pct": _change_pct(a.get(stat), b.get(stat))}
        metrics.append(row)
    slo_before = {s["metric"]: s for s in before.get("slo", [])}
    slo_changes, regressions = [], []
    for entry in after.get("slo", []):
        old = slo_before.get(entry["metric"])
        if old is None or old.get("status") == entry.get("status"):
            continue
        change = {"metric": entry["metric"], "before": old.get("status"), "after": entry.get("status"),
                  "observed_before": old.get("observed"), "observed_after": entry.get("observed")}
        slo_changes.append(change)
        if old.get("status") == "pass" and entry.get("status") in ("miss", "fail"):
            regressions.append(entry["metric"])
    return {
        "before": {"id": before.get("run", {}).get("id"), "verdict": before.get("summary", {}).get("verdict")},
        "after": {"id": after.get("run", {}).get("id"), "verdict": after.get("summary", {}).get("verdict")},
        "metrics": metrics,
        "slo_changes": slo_changes,
        "regressions": regressions,
    }


def comparison_text(comparison: dict[str, Any]) -> str:
    """A plain-text table of the comparison, for the terminal and logs."""
    before, after = comparison["before"], comparison["after"]
    lines = [f"compare {before['id']} ({before['verdict']}) -> {after['id']} ({after['verdict']})",
             f"  {'metric':<26}" + "".join(f"{stat + ' before':>12}{stat + ' after':>12}{'change':>9}" for stat in STATS)]
    for row in comparison["metrics"]:
        cells = ""
        for stat in STATS:
            cell = row[stat]
            change = "" if cell["change_pct"] is None else f"{cell['change_pct']:+.1f}%"
            cells += f"{_num(cell['before']):>12}{_num(cell['after']):>12}{change:>9}"
        lines.append(f"  {row['metric']:<26}{cells}")
    for change in comparison["slo_changes"]:
        lines.append(f"  SLO {change['metric']}: {change['before']} -> {change['after']}")
    lines.append("  regressions: " + (", ".join(comparison["regressions"]) or "none"))
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.1f}"
