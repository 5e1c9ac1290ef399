"""Record a voice/backend metric sample exactly AND fire it as a Locust request event.

The Locust event makes the sample visible in the web UI, CSVs and Locust's HTML; the exact
histogram (metrics/recorder.py) is what report.json's percentiles come from. The users call
users.run_context.emit, which records into the current run's recorder.
"""

from __future__ import annotations

from locust import events

from metrics.recorder import MetricsRecorder


class MetricFailure(Exception):
    """A metric that could not be measured, e.g. no answer within the timeout."""


def record_and_fire(recorder: MetricsRecorder, group: str, name: str, ms: float, error: str | None = None) -> None:
    if error is None:
        recorder.record(name, ms, group)
    else:
        recorder.record_failure(name, group)
        recorder.error(name, error)
    events.request.fire(request_type=group, name=name, response_time=ms, response_length=0,
                        exception=MetricFailure(error) if error else None, context={})
