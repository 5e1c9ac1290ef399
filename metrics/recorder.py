"""The store of a run's exact samples: metric histograms, request histograms, counters, errors.

Each run has its own (the run context's, users/run_context.py; nothing here is process-wide). Workers
drain theirs into each report to the master; the master (or a local runner) absorbs those drains, so
the master's store holds exactly the union of every worker's samples.
"""

from __future__ import annotations

from collections import Counter

from metric_registry import charted
from metrics.histogram import LatencyHistogram

# Metrics whose per-interval percentiles go into the report's timeline (the registry's charted ones).
TIMELINE_METRICS = charted()
# Counters a load phase keeps of its own, so each step, wave or burst gets its own call success rate.
PHASE_COUNTERS = frozenset({"calls_attempted", "calls_started", "calls_completed", "calls_failed", "calls_interrupted",
                            "turns_answered", "turns_unanswered", "turns_cut_by_hangup", "calls_arrived",
                            "calls_dropped_at_cap", "calls_dropped_at_setup"})


def request_key(request_type: str, name: str) -> str:
    return f"{request_type}\x1f{name}"


def split_request_key(key: str) -> tuple[str, str]:
    request_type, _, name = key.partition("\x1f")
    return request_type, name


class PhaseStats:
    """A load phase's (a step, wave or burst of the shape) own exact metrics and request outcomes, for
    its row in the report and for judging its SLOs (the capacity finder)."""

    def __init__(self) -> None:
        self.metrics: dict[str, LatencyHistogram] = {}
        self.requests = 0
        self.failures = 0
        self.counters: Counter[str] = Counter()
        self.metric_failures: Counter[str] = Counter()

    @property
    def voice_loop(self) -> LatencyHistogram:
        return self.metrics.get("voice_loop") or LatencyHistogram()

    def to_wire(self) -> dict:
        return {"metrics": {name: h.to_wire() for name, h in self.metrics.items()}, "requests": self.requests,
                "failures": self.failures, "counters": dict(self.counters), "metric_failures": dict(self.metric_failures)}

    def absorb(self, wire: dict) -> None:
        for name, data in wire["metrics"].items():
            self.metrics.setdefault(name, LatencyHistogram()).merge(LatencyHistogram.from_wire(data))
        self.requests += wire["requests"]
        self.failures += wire["failures"]
        self.counters.update(wire.get("counters", {}))
        self.metric_failures.update(wire.get("metric_failures", {}))


class MetricsRecorder:
    """Exact histograms keyed by metric name (and by Locust request type+name), plus counters.
    While `phase` is set (by the load shape), metrics and request outcomes also go to that phase."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.phases: dict[str, PhaseStats] = {}
        self.metrics: dict[str, LatencyHistogram] = {}
        self.metric_groups: dict[str, str] = {}
        self.metric_failures: Counter[str] = Counter()
        self.requests: dict[str, LatencyHistogram] = {}
        self.request_failures: Counter[str] = Counter()
        self.window: dict[str, LatencyHistogram] = {}
        self.counters: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.cpu_samples: list[float] = []

    # -- recording (user side) -------------------------------------------------------------
    def record(self, name: str, ms: float, group: str = "voice") -> None:
        histogram = self.metrics.get(name)
        if histogram is None:
            histogram = self.metrics[name] = LatencyHistogram()
            self.metric_groups[name] = group
        histogram.record(ms)
        if name in TIMELINE_METRICS:
            self.window.setdefault(name, LatencyHistogram()).record(ms)
        if self.phase is not None:
            self._phase_stats().metrics.setdefault(name, LatencyHistogram()).record(ms)

    def record_failure(self, name: str, group: str = "voice") -> None:
        self.metric_groups.setdefault(name, group)
        self.metric_failures[name] += 1
        if self.phase is not None:
            self._phase_stats().metric_failures[name] += 1

    def record_request(self, request_type: str, name: str, ms: float, failed: bool) -> None:
        key = request_key(request_type, name)
        histogram = self.requests.get(key)
        if histogram is None:
            histogram = self.requests[key] = LatencyHistogram()
        histogram.record(ms)
        if failed:
            self.request_failures[key] += 1
        if self.phase is not None:
            stats = self._phase_stats()
            stats.requests += 1
            stats.failures += failed

    def _phase_stats(self) -> PhaseStats:
        stats = self.phases.get(self.phase)
        if stats is None:
            stats = self.phases[self.phase] = PhaseStats()
        return stats

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount
        if self.phase is not None and name in PHASE_COUNTERS:
            self._phase_stats().counters[name] += amount

    def error(self, kind: str, message: str) -> None:
        self.errors[(kind, message[:200])] += 1

    # -- shipping between processes -------------------------------------------------------------
    def drain(self) -> dict:
        """Everything recorded since the last drain, in wire form; resets the store."""
        wire = {
            "metrics": {name: h.to_wire() for name, h in self.metrics.items()},
            "groups": dict(self.metric_groups),
            "metric_failures": dict(self.metric_failures),
            "requests": {key: h.to_wire() for key, h in self.requests.items()},
            "request_failures": dict(self.request_failures),
            "window": {name: h.to_wire() for name, h in self.window.items()},
            "counters": dict(self.counters),
            "errors": [[kind, message, count] for (kind, message), count in self.errors.items()],
            "cpu": list(self.cpu_samples),
            "phases": {name: stats.to_wire() for name, stats in self.phases.items()},
        }
        phase = self.phase
        self.__init__()
        self.phase = phase  # the load shape's phase goes on across drains
        return wire

    def absorb(self, wire: dict) -> None:
        """Merge a drain from another process (exact)."""
        for name, data in wire.get("metrics", {}).items():
            self.metrics.setdefault(name, LatencyHistogram()).merge(LatencyHistogram.from_wire(data))
        for name, group in wire.get("groups", {}).items():
            self.metric_groups.setdefault(name, group)
        self.metric_failures.update(wire.get("metric_failures", {}))
        for key, data in wire.get("requests", {}).items():
            self.requests.setdefault(key, LatencyHistogram()).merge(LatencyHistogram.from_wire(data))
        self.request_failures.update(wire.get("request_failures", {}))
        for name, data in wire.get("window", {}).items():
            self.window.setdefault(name, LatencyHistogram()).merge(LatencyHistogram.from_wire(data))
        self.counters.update(wire.get("counters", {}))
        for kind, message, count in wire.get("errors", []):
            self.errors[(kind, message)] += count
        self.cpu_samples.extend(wire.get("cpu", []))
        for name, data in wire.get("phases", {}).items():
            self.phases.setdefault(name, PhaseStats()).absorb(data)

    def take_window(self) -> dict[str, LatencyHistogram]:
        """The timeline window histograms since the last call; resets them."""
        window, self.window = self.window, {}
        return window
