"""The worker's Prometheus metrics, safe for Celery's prefork pool.

Each pool process writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``; the
worker's main process serves them all, summed, on ``metrics_port``. prometheus-client
reads that variable when it is first imported, so the main process sets it (a fresh
folder when the operator gave none) before any pool process starts, and nothing here
imports prometheus-client at module import.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Per-image stages take milliseconds (a 224 px decode) to seconds (a 24 MP photo, a busy Triton).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class WorkerMetrics:
    images: object  # Counter, labels: status (ok|error), source (model|cache)
    cache_lookups: object  # Counter, labels: result (hit|miss)
    stage_seconds: object  # Histogram, labels: stage (decode|inference|total)
    chunks: object  # Counter
    chunk_retries: object  # Counter

    def image_done(self, ok: bool, cached: bool, count: int = 1) -> None:
        self.images.labels(status="ok" if ok else "error", source="cache" if cached else "model").inc(count)

    def stage(self, stage: str, seconds: float, images: int = 1) -> None:
        """``images`` observations of ``seconds`` (a batch's images share its time)."""
        observe = self.stage_seconds.labels(stage=stage).observe
        for _ in range(images):
            observe(seconds)

    def chunk_done(self, done: Mapping[tuple[bool, bool], int], per_image_s: float, twin_hits: int = 0) -> None:
        """A chunk's newly recorded images, counted by (ok, cached), each taking ``per_image_s``;
        ``twin_hits``: images answered by an earlier copy in the chunk (cache hits)."""
        for (ok, cached), count in done.items():
            self.image_done(ok, cached, count)
        self.stage("total", per_image_s, sum(done.values()))
        if twin_hits:
            self.cache_lookups.labels(result="hit").inc(twin_hits)


_lock = threading.Lock()
_metrics: WorkerMetrics | None = None


def worker_metrics() -> WorkerMetrics:
    """This process's metrics (created on first use, after the pool forked; threads race here)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _create()
        return _metrics


def _create() -> WorkerMetrics:
    from prometheus_client import Counter, Histogram

    return WorkerMetrics(
        images=Counter("podium_images_processed", "Images a worker finished", ["status", "source"]),
        cache_lookups=Counter("podium_result_cache_lookups", "Result-cache lookups", ["result"]),
        stage_seconds=Histogram(
            "podium_image_stage_seconds", "Time per image and stage", ["stage"], buckets=LATENCY_BUCKETS
        ),
        chunks=Counter("podium_chunks_processed", "Chunks a worker finished"),
        chunk_retries=Counter("podium_chunk_retries", "Chunk starts after an earlier start died with its worker"),
    )


def prepare_multiprocess_dir() -> str:
    """In the worker's main process, before the pool forks: the folder pool processes write to."""
    folder = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="podium-worker-metrics-")
    # Samples of an earlier run of this worker would be counted again.
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    os.environ[MULTIPROC_ENV] = folder
    return folder


def serve_metrics(host: str, port: int) -> None:
    """Serve every pool process's samples, summed (in the main process)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
    log.info("worker metrics on http://%s:%d/metrics", host, port)
