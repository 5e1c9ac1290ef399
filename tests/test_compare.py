"""--compare: the difference between two runs, and the regression an SLO gate should fail on."""

from __future__ import annotations

import json

from reporting.compare import compare_reports, comparison_text
from tests.conftest import run_cli


def report(run_id: str, voice_p95: float, status: str) -> dict:
    return {"run": {"id": run_id}, "summary": {"verdict": "pass" if status == "pass" else "warn"},
            "metrics": {"voice_loop": {"p50": 500.0, "p95": voice_p95, "p99": voice_p95 + 10},
                        "ws_handshake": {"p50": 5.0, "p95": 8.0, "p99": 9.0}},
            "slo": [{"metric": "voice_loop", "status": status, "observed": voice_p95},
                    {"metric": "ws_handshake", "status": "pass", "observed": 8.0}]}


def test_comparison_gives_changes_and_regressions():
    comparison = compare_reports(report("a", 600.0, "pass"), report("b", 750.0, "miss"))
    voice = next(m for m in comparison["metrics"] if m["metric"] == "voice_loop")
    assert voice["p95"] == {"before": 600.0, "after": 750.0, "change_pct": 25.0}
    assert comparison["slo_changes"] == [{"metric": "voice_loop", "before": "pass", "after": "miss",
                                          "observed_before": 600.0, "observed_after": 750.0}]
    assert comparison["regressions"] == ["voice_loop"]
    assert "+25.0%" in comparison_text(comparison) and "regressions: voice_loop" in comparison_text(comparison)
    assert compare_reports(report("b", 750.0, "miss"), report("a", 600.0, "pass"))["regressions"] == []


def test_compare_on_the_command_line_exits_1_on_a_regression(tmp_path):
    for run_id, p95, status in (("run-a", 600.0, "pass"), ("run-b", 750.0, "miss")):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "report.json").write_text(json.dumps(report(run_id, p95, status)))
    result = run_cli(["--compare", "run-a", str(tmp_path / "run-b"), "--results-dir", str(tmp_path)], timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "voice_loop" in result.stdout and "+25.0%" in result.stdout
    assert json.loads((tmp_path / "compare.json").read_text())["regressions"] == ["voice_loop"]
    same = run_cli(["--compare", "run-a", "run-a", "--results-dir", str(tmp_path)], timeout=30)
    assert same.returncode == 0
    missing = run_cli(["--compare", "run-a", "nope", "--results-dir", str(tmp_path)], timeout=30)
    assert missing.returncode == 2 and "no report found for 'nope'" in missing.stderr
