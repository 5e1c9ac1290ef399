"""Files around a run: the results folder check, the extra report copies the original framework's scripts
read, and --compare of two earlier runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from orchestrator.exit_codes import EXIT_FAIL, EXIT_PASS, fail_input


def ensure_writable(directory: Path) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"results dir {directory} is not writable: {exc.strerror or exc}"
    return None


def seed_report_paths(results_dir: Path, started: dt.datetime) -> list[Path]:
    """The file names the original stress framework used, kept for the scripts that read them."""
    return [results_dir / f"load_test_report_{started:%Y%m%d_%H%M%S}.json", results_dir / "load_test_report_latest.json"]


def write_json_copy(report: dict, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    except OSError as exc:
        print(f"warning: could not write {path}: {exc.strerror or exc}", file=sys.stderr)


def load_run_report(spec: str, results_dir: Path) -> dict:
    """A report from a run folder, a report.json path or a run id under results_dir; ValueError if none."""
    for candidate in (Path(spec), Path(spec) / "report.json", results_dir / spec / "report.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except ValueError:
                raise ValueError(f"{candidate} is not a JSON report") from None
    raise ValueError(f"no report found for {spec!r} (give a run folder, a report.json or a run id in {results_dir})")


def compare_runs(specs: list[str], results_dir: Path, output: Path | None) -> int:
    from reporting.compare import compare_reports, comparison_text

    try:
        before, after = (load_run_report(spec, results_dir) for spec in specs)
    except ValueError as exc:
        return fail_input(str(exc))
    comparison = compare_reports(before, after)
    print(comparison_text(comparison), end="")
    path = output or results_dir / "compare.json"
    write_json_copy(comparison, path)
    print(f"comparison: {path}")
    return EXIT_FAIL if comparison["regressions"] else EXIT_PASS
