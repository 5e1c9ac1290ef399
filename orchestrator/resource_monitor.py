"""Watch the system under test's processes and the load generator's with psutil while a run goes.

Every `interval_s` a background thread samples CPU, resident memory, threads and open files of each
target process (the local stack's target, redis-server and Cosmos stand-in, or --monitor-pid) and the
sum over the generator (every Locust process this run started), plus the machine's network I/O.
The report gets peaks, a time series and the bottlenecks the seed's thresholds find.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class BottleneckLimits:
    """The stress framework's thresholds for calling a process a bottleneck."""

    cpu_percent: float = 80.0
    memory_mb: float = 1024.0
    threads: int = 100
    open_files: int = 500


def find_bottlenecks(peaks: dict[str, dict], limits: BottleneckLimits = BottleneckLimits()) -> list[str]:
    """One line per process whose peak crossed a limit: what, how far, and what to look at."""
    found = []
    for name, peak in peaks.items():
        if (peak.get("cpu_max_percent") or 0) > limits.cpu_percent:
            found.append(f"{name}: CPU peaked at {peak['cpu_max_percent']:.0f}% (limit {limits.cpu_percent:g}%): "
                         "CPU-bound, scale it out or give it more cores")
        if (peak.get("rss_max_mb") or 0) > limits.memory_mb:
            found.append(f"{name}: memory peaked at {peak['rss_max_mb']:.0f} MB (limit {limits.memory_mb:g} MB): "
                         "look for per-call state that is never freed")
        if (peak.get("threads_max") or 0) > limits.threads:
            found.append(f"{name}: {peak['threads_max']} threads (limit {limits.threads}): a thread per call or "
                         "per request does not scale; use async I/O or a bounded pool")
        if (peak.get("open_files_max") or 0) > limits.open_files:
            found.append(f"{name}: {peak['open_files_max']} open files/sockets (limit {limits.open_files}): "
                         "check connection pooling (DB_POOL_SIZE / DB_MAX_OVERFLOW) and the file descriptor limit")
    return found


def _sample(process: psutil.Process) -> dict | None:
    try:
        with process.oneshot():
            return {"cpu": process.cpu_percent(None), "rss_mb": process.memory_info().rss / MB,
                    "threads": process.num_threads(), "open_files": process.num_fds()}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class ResourceMonitor:
    """Samples `targets` (name -> pid) and this process's other descendants (the generator)."""

    def __init__(self, targets: dict[str, int], interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self.targets = {name: psutil.Process(pid) for name, pid in targets.items() if psutil.pid_exists(pid)}
        self.series: list[dict] = []
        self.peaks: dict[str, dict] = {}
        self._generator: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)
        self._started = time.monotonic()
        self._net = psutil.net_io_counters()

    def __enter__(self) -> "ResourceMonitor":
        for process in self.targets.values():
            _sample(process)  # primes cpu_percent
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)

    def _generator_processes(self) -> list[psutil.Process]:
        """Every descendant of this process that is not a monitored target (nor one of its children)."""
        excluded = set()
        for process in self.targets.values():
            try:
                excluded |= {process.pid, *(c.pid for c in process.children(recursive=True))}
            except psutil.NoSuchProcess:
                continue
        current = []
        for child in psutil.Process().children(recursive=True):
            if child.pid in excluded:
                continue
            known = self._generator.setdefault(child.pid, child)
            if known is child:
                _sample(child)  # first sight: prime cpu_percent, measure from the next tick
            else:
                current.append(known)
        return current

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def sample_once(self) -> None:
        point: dict = {"t_s": round(time.monotonic() - self._started, 1)}
        for name, process in self.targets.items():
            sample = _sample(process)
            if sample:
                self._note(name, sample)
                point[f"{name}_cpu"] = round(sample["cpu"], 1)
                point[f"{name}_rss_mb"] = round(sample["rss_mb"], 1)
        generator = [s for s in (_sample(p) for p in self._generator_processes()) if s]
        if generator:
            total = {key: sum(s[key] for s in generator) for key in ("cpu", "rss_mb", "threads", "open_files")}
            self._note("generator", total)
            point["generator_cpu"] = round(total["cpu"], 1)
        net = psutil.net_io_counters()
        point["net_sent_kb_s"] = round((net.bytes_sent - self._net.bytes_sent) / 1024 / self.interval_s, 1)
        point["net_recv_kb_s"] = round((net.bytes_recv - self._net.bytes_recv) / 1024 / self.interval_s, 1)
        self._net = net
        self.series.append(point)

    def _note(self, name: str, sample: dict) -> None:
        peak = self.peaks.setdefault(name, {"cpu_max_percent": 0.0, "rss_max_mb": 0.0, "threads_max": 0, "open_files_max": 0})
        peak["cpu_max_percent"] = round(max(peak["cpu_max_percent"], sample["cpu"]), 1)
        peak["rss_max_mb"] = round(max(peak["rss_max_mb"], sample["rss_mb"]), 1)
        peak["threads_max"] = max(peak["threads_max"], sample["threads"])
        peak["open_files_max"] = max(peak["open_files_max"], sample["open_files"])

    def summary(self) -> dict:
        """report.json `resources`: target and generator peaks, the target's bottlenecks (the
        generator's own load is judged by generator health, and peaks while Locust starts), the series."""
        targets = {name: peak for name, peak in self.peaks.items() if name != "generator"}
        return {"target": targets, "generator": self.peaks.get("generator", {}),
                "bottlenecks": find_bottlenecks(targets), "series": self.series,
                "interval_s": self.interval_s}
