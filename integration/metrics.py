"""Prometheus metrics for the service.

Under gunicorn's several processes, ``integration serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker forks, so every process writes its samples there and ``/metrics`` sums them
(prometheus-client's multiprocess mode). Without it, the process's own registry is served.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

EVENTS_RECEIVED = Counter("integration_events_received_total", "Events accepted into the inbox",
                          ["source", "type"])
EVENTS_DONE = Counter("integration_events_done_total", "Events synced successfully", ["source", "type"])
EVENTS_FAILED = Counter("integration_events_failed_total", "Events that landed on the failure list",
                        ["source", "type", "code"])
EVENTS_RETRIED = Counter("integration_events_rescheduled_total",
                         "Transient failures rescheduled with backoff", ["source", "type"])
REMOTE_CALLS = Counter("integration_remote_calls_total", "Calls to Zuora and the billing platform",
                       ["api", "method", "endpoint", "status"])
REMOTE_LATENCY = Histogram("integration_remote_call_seconds", "Latency of remote calls",
                           ["api", "method", "endpoint"],
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REMOTE_RATE_LIMITED = Counter("integration_remote_rate_limited_total", "429 answers from a remote API",
                              ["api"])
INBOX_DEPTH = Gauge("integration_inbox_depth", "Events pending or running", ["status"],
                    multiprocess_mode="liveall")
INBOX_OLDEST_DUE_AGE = Gauge("integration_inbox_oldest_due_age_seconds",
                             "Age of the oldest event that is due and not yet claimed",
                             multiprocess_mode="liveall")


def render() -> tuple[bytes, str]:
    """The metrics text for ``/metrics`` and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
