"""Per-process resources of a worker, created lazily after fork, never at import."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from celery import Celery

from podium.core.imaging import Decoder
from podium.core.jobs import ImageOutcome, Job
from podium.core.modelmeta import ModelRef
from podium.stores.inference import Classifiers, TritonClassifier
from podium.stores.inference.shared_memory import is_local
from podium.stores.jobstore import CacheKey, ChunkQueue, JobStore, ResultCache
from podium.stores.jobstore.cache import ANONYMOUS_SCOPE, SHARED_SCOPE
from podium.stores.objectstore import ObjectStore
from podium.stores.resultsink import Sink, open_sink
from worker.outage import OutageClock
from worker.settings import WorkerSettings
from worker.single_flight import SingleFlight


@dataclass
class Runtime:
    settings: WorkerSettings
    store: JobStore
    classifiers: Classifiers
    queue: ChunkQueue
    pool: ThreadPoolExecutor
    decoder: Decoder
    outage: OutageClock = field(default_factory=OutageClock)  # Triton's
    sink_outage: OutageClock = field(default_factory=OutageClock)  # the results sink's
    cache: ResultCache | None = None  # None: PODIUM_RESULT_CACHE=false
    single_flight: SingleFlight[ImageOutcome] = field(default_factory=SingleFlight)
    objects: ObjectStore = field(default_factory=ObjectStore)  # its S3 client is made on first use
    # Lease releases Redis could not take; the next task of this process sends them.
    unreleased: list[tuple[str, int, str]] = field(default_factory=list)
    sinks: dict[str, Sink] = field(default_factory=dict)  # results sinks by URL, each made once

    def sink(self, url: str) -> Sink:
        """The results sink at ``url`` (a job's ``results_url``), made on first use."""
        if url not in self.sinks:
            self.sinks[url] = open_sink(url)
        return self.sinks[url]

    def classifier(self, job: Job) -> TritonClassifier:
        """The client of the model and version the job was submitted with."""
        return self.classifiers.get(ModelRef(job.model_name or self.settings.model_name, job.model_version))

    def digest(self, job: Job, data: bytes) -> str | None:
        """The sha256 (hex) of an image's bytes, where something needs it: the result cache's key
        or the job's result files; None otherwise (the hash is not computed)."""
        if job.results_url or (self.cache is not None and job.model_version):
            return hashlib.sha256(data).hexdigest()
        return None

    def cache_key(self, job: Job, digest: str | None) -> str | None:
        """The key in the result cache of the image whose bytes' sha256 is ``digest``; None when
        there is no cache or the job's model version is not pinned (submitted while Triton was away)."""
        if self.cache is None or not job.model_version or digest is None:
            return None
        shared = self.settings.result_cache_scope == "shared"
        scope = SHARED_SCOPE if shared else (job.owner or ANONYMOUS_SCOPE)
        key = CacheKey(job.model_name, job.model_version, job.top_k, job.explain, self.settings.decode.cache_tag, scope)
        return key.of_digest(digest)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.classifiers.close()


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def uses_shared_memory(settings: WorkerSettings) -> bool:
    """PODIUM_TRITON_SHARED_MEMORY: on, off, or (auto) on when Triton is on this machine."""
    if settings.triton_shared_memory == "auto":
        return is_local(settings.triton_url)
    return settings.triton_shared_memory == "on"


def get_runtime(app: Celery, settings: WorkerSettings) -> Runtime:
    """This process's runtime; a forked child builds its own instead of inheriting one."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        store = JobStore.from_url(settings.redis_url, settings.result_ttl_s)
        _runtime = Runtime(
            settings=settings,
            store=store,
            classifiers=Classifiers(
                settings.triton_url,
                settings.triton_timeout_s,
                settings.images_per_request,
                shared_memory=uses_shared_memory(settings),
                slots=settings.inflight,
            ),
            queue=ChunkQueue(store, app, settings.max_queued_chunks),
            pool=ThreadPoolExecutor(settings.inflight, thread_name_prefix="podium-infer"),
            decoder=settings.decoder(),
            cache=ResultCache(store.client, settings.result_cache_ttl_s, settings.result_cache_max_entries)
            if settings.result_cache
            else None,
        )
        _runtime_pid = os.getpid()
    return _runtime


def close_runtime() -> None:
    """Close this process's own clients (called at worker process shutdown); a runtime
    inherited across a fork is only forgotten: its channels belong to the parent."""
    global _runtime, _runtime_pid
    if _runtime is not None and _runtime_pid == os.getpid():
        _runtime.close()
    _runtime, _runtime_pid = None, None


def reset_runtime() -> None:
    """Forget resources inherited across a fork (called in worker_process_init)."""
    global _runtime, _runtime_pid
    _runtime, _runtime_pid = None, None
