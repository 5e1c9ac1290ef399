"""Write a run's report files: report.json, report.html, junit.xml, and point results/latest at them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reporting.html_report import render_html
from reporting.junit import render_junit


def write_run_outputs(report: dict, run_dir: Path, latest: bool = True) -> list[Path]:
    """Write the three report files into `run_dir` (created if needed) and, unless `latest` is False,
    point results/latest at it; returns their paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "report.json": json.dumps(report, indent=2, default=str) + "\n",
        "report.html": render_html(report),
        "junit.xml": render_junit(report),
    }
    written = []
    for name, text in files.items():
        path = run_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    if latest:
        point_latest(run_dir)
    return written


def point_latest(run_dir: Path) -> None:
    """results/latest -> the newest run folder (a relative symlink; best effort)."""
    latest = run_dir.parent / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        pass
