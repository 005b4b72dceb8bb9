"""The gateway's Prometheus metrics: what it does, and what the job store holds at scrape time.

Counters and histograms are updated by the service as things happen; queue depth, active
jobs, Redis memory and the result cache's size are read from Redis when Prometheus scrapes
(a collector), so they cannot go stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from podium.stores.jobstore import JobStore, ResultCache
from podium.stores.jobstore.queue import QUEUE_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayMetrics:
    jobs_submitted: object  # Counter, labels: mode
    webhooks: object  # Counter, labels: outcome (delivered|given_up)

    def webhook(self, delivered: bool) -> None:
        self.webhooks.labels(outcome="delivered" if delivered else "given_up").inc()


class StoreCollector:
    """Gauges read from Redis at each scrape."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            values = {
                "podium_queue_depth": ("Chunk tasks waiting for a worker", self._store.queue_length(QUEUE_NAME)),
                "podium_active_jobs": ("Jobs not yet ended", self._store.active_jobs()),
                "podium_redis_used_memory_bytes": ("Memory Redis uses", self._store.used_memory_bytes()),
                "podium_result_cache_entries": ("Answers in the result cache", ResultCache(self._store.client).size()),
            }
        except Exception:  # a scrape during a Redis outage reports the gauges missing, not an error page
            log.warning("metrics: Redis unavailable", exc_info=True)
            return
        for name, (text, value) in values.items():
            yield GaugeMetricFamily(name, text, value=value)


def start_metrics(store: JobStore, host: str, port: int) -> GatewayMetrics:
    """The gateway's metrics, in a registry of its own (one per gateway, so that several in
    one process do not collide), served on host:port (0: not served)."""
    from prometheus_client import CollectorRegistry, Counter, GCCollector, ProcessCollector, start_http_server

    registry = CollectorRegistry()
    metrics = GatewayMetrics(
        jobs_submitted=Counter("podium_jobs_submitted", "Jobs accepted", ["mode"], registry=registry),
        webhooks=Counter("podium_webhooks", "Webhook deliveries", ["outcome"], registry=registry),
    )
    if port:
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(StoreCollector(store))
        start_http_server(port, addr=host, registry=registry)
        log.info("gateway metrics on http://%s:%d/metrics", host, port)
    return metrics
