"""Prometheus metrics for the service.

Under gunicorn's several processes, ``integration serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker forks, so every process writes its samples there and ``/metrics`` sums them
(prometheus-client's multiprocess mode). Without it, the process's own registry is served.

Counters and histograms are per-process facts and sum correctly across processes. The inbox
depth, the age of the oldest due event and the size of the failure list are *facts about the
store*, not about any process: a multiprocess gauge would keep one sample per gunicorn worker,
each as old as that worker's last scrape, and no ``multiprocess_mode`` makes stale copies right
(``max``/``sum`` mix old values; ``mostrecent`` only hides them). So those are not gauges in the
registry at all: ``StoreCollector`` reads them from the store during each scrape and they are
rendered once, by the process answering, alongside the summed per-process metrics.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("integration.metrics")

EVENTS_RECEIVED = Counter("integration_events_received_total", "Events accepted into the inbox",
                          ["source", "type"])
EVENTS_DONE = Counter("integration_events_done_total", "Events synced successfully", ["source", "type"])
EVENTS_FAILED = Counter("integration_events_failed_total", "Events that landed on the failure list",
                        ["source", "type", "code"])
EVENTS_RETRIED = Counter("integration_events_rescheduled_total",
                         "Transient failures rescheduled with backoff", ["source", "type"])
FAILURES_RETRIED = Counter("integration_failures_retried_total",
                           "Failed events put back in the queue, by the admin API or the scheduled retry",
                           ["trigger"])
FAILURES_DELETED = Counter("integration_failures_deleted_total",
                           "Failed events marked deleted through the admin API")
WEBHOOK_REFUSED = Counter("integration_webhook_refused_total",
                          "Webhook requests refused (401, 400, 413, 415, 503), by route and reason",
                          ["route", "reason"])
REMOTE_CALLS = Counter("integration_remote_calls_total", "Calls to Zuora and the billing platform",
                       ["api", "method", "endpoint", "status"])
REMOTE_LATENCY = Histogram("integration_remote_call_seconds", "Latency of remote calls",
                           ["api", "method", "endpoint"],
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REMOTE_RATE_LIMITED = Counter("integration_remote_rate_limited_total", "429 answers from a remote API",
                              ["api"])


class StoreCollector:
    """Gauges read from the store at scrape time (see the module docstring for why).

    ``depth`` returns ``Inbox.depth()``'s dict; ``failure_counts`` maps each failure code to the
    number of events on the failure list. When the store cannot be read, the store gauges are
    left out and ``integration_store_up`` says 0, so the scrape itself still succeeds.
    """

    def __init__(self, depth: Callable[[], dict], failure_counts: Callable[[], dict[str, int]],
                 codes: Iterable[str] = ()):
        self._depth = depth
        self._failure_counts = failure_counts
        self._codes = tuple(codes)

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self._depth()
            failed = self._failure_counts()
        except Exception as exc:  # noqa: BLE001 - a metrics scrape must not fail with the store
            log.warning("store unreadable during metrics scrape", extra={"error": type(exc).__name__})
            yield GaugeMetricFamily("integration_store_up", "1 when the store answered this scrape", value=0)
            return
        yield GaugeMetricFamily("integration_store_up", "1 when the store answered this scrape", value=1)
        inbox = GaugeMetricFamily("integration_inbox_depth", "Events pending or running", labels=["status"])
        for status in ("pending", "running"):
            inbox.add_metric([status], depth.get(status, 0))
        yield inbox
        yield GaugeMetricFamily("integration_inbox_oldest_due_age_seconds",
                                "Age of the oldest event that is due and not yet claimed",
                                value=depth.get("oldest_due_age_seconds", 0.0))
        listed = GaugeMetricFamily("integration_failures", "Events on the failure list, by code", labels=["code"])
        for code in sorted(set(self._codes) | set(failed)):
            listed.add_metric([code], failed.get(code, 0))
        yield listed


class _Collected:
    """Adapter: lets the default registry be registered inside a per-scrape registry."""

    def __init__(self, source):
        self._source = source

    def collect(self) -> Iterator[Metric]:
        return self._source.collect()


def render(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The metrics text for ``/metrics`` and its content type.

    Per-process metrics come from the multiprocess directory when ``PROMETHEUS_MULTIPROC_DIR`` is
    set (summed over every process), else from this process's registry; ``extra`` collectors
    (``StoreCollector``) are added once, computed now.
    """
    from prometheus_client import CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Collected(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
