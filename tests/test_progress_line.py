"""The progress line of a running group: time into its load, never past its run time."""

from __future__ import annotations

import re
import time

from orchestrator.locust_run import CSV_PREFIX, LocustJob, _progress

HEADER = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,Total Failure Count\n"


def write_history(run_dir, started: float) -> None:
    (run_dir / f"{CSV_PREFIX}_stats_history.csv").write_text(
        HEADER + f"{int(started)},4,,Aggregated,12.5,0,250,1\n")


def test_the_progress_line_counts_from_the_load_and_stops_at_the_run_time(tmp_path):
    job = LocustJob("websocket", [], tmp_path, 24)
    assert _progress(job, time.monotonic() - 3).strip().startswith("websocket [   3s] starting…")
    write_history(tmp_path, time.time() - 10.5)  # Locust's timestamps are whole seconds
    line = _progress(job, time.monotonic() - 13)  # the process started 3 s before its load did
    assert re.match(r"websocket \[  1[01]s/24s\] users    4", line.strip()) and "requests    250 · failures    1" in line
    write_history(tmp_path, time.time() - 30)
    assert "[24s/24s, finishing its calls]" in _progress(job, time.monotonic() - 33)
