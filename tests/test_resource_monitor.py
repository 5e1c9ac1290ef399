"""Resource monitoring: real processes sampled with psutil, peaks and the seed's bottleneck thresholds."""

from __future__ import annotations

import subprocess
import sys
import time

from orchestrator.resource_monitor import BottleneckLimits, ResourceMonitor, find_bottlenecks


def test_bottlenecks_use_the_seeds_thresholds():
    peaks = {"target": {"cpu_max_percent": 95.0, "rss_max_mb": 300.0, "threads_max": 12, "open_files_max": 40},
             "redis": {"cpu_max_percent": 10.0, "rss_max_mb": 1500.0, "threads_max": 150, "open_files_max": 600}}
    found = find_bottlenecks(peaks)
    assert len(found) == 4
    assert found[0].startswith("target: CPU peaked at 95%")
    assert any(line.startswith("redis: memory peaked at 1500 MB") for line in found)
    assert any("redis: 150 threads" in line for line in found) and any("600 open files" in line for line in found)
    assert find_bottlenecks({"target": {"cpu_max_percent": 80.0, "rss_max_mb": 1024.0, "threads_max": 100,
                                        "open_files_max": 500}}) == []  # at the limit is not over it


def test_a_busy_target_process_is_sampled_and_named(tmp_path):
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        monitor = ResourceMonitor({"target": busy.pid}, interval_s=0.5)
        with monitor:
            for _ in range(4):  # sampled here too, so the count does not depend on the thread's timing
                time.sleep(0.5)  # the interval the CPU share is measured over, not synchronization
                monitor.sample_once()
        summary = monitor.summary()
    finally:
        busy.kill()
        busy.wait()
    peak = summary["target"]["target"]
    assert peak["cpu_max_percent"] > 20 and peak["rss_max_mb"] > 1 and peak["threads_max"] >= 1 and peak["open_files_max"] >= 3
    assert len(summary["series"]) >= 4 and "target_cpu" in summary["series"][-1]
    assert any(line.startswith("target: CPU") for line in find_bottlenecks(summary["target"], BottleneckLimits(cpu_percent=20)))
