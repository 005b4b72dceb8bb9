"""Per-process resources of a worker, created lazily after fork, never at import."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from celery import Celery

from imaging import Decoder
from inference import Classifiers, TritonClassifier
from jobs import Job
from jobstore import ChunkQueue, JobStore
from modelmeta import ModelRef
from worker.outage import OutageClock
from worker.settings import WorkerSettings


@dataclass
class Runtime:
    settings: WorkerSettings
    store: JobStore
    classifiers: Classifiers
    queue: ChunkQueue
    pool: ThreadPoolExecutor
    decoder: Decoder
    outage: OutageClock = field(default_factory=OutageClock)
    # Lease releases Redis could not take; the next task of this process sends them.
    unreleased: list[tuple[str, int, str]] = field(default_factory=list)

    def classifier(self, job: Job) -> TritonClassifier:
        """The client of the model and version the job was submitted with."""
        return self.classifiers.get(ModelRef(job.model_name or self.settings.model_name, job.model_version))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.classifiers.close()


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime(app: Celery, settings: WorkerSettings) -> Runtime:
    """This process's runtime; a forked child builds its own instead of inheriting one."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        store = JobStore.from_url(settings.redis_url, settings.result_ttl_s)
        _runtime = Runtime(
            settings=settings,
            store=store,
            classifiers=Classifiers(settings.triton_url, settings.triton_timeout_s),
            queue=ChunkQueue(store, app, settings.max_queued_chunks),
            pool=ThreadPoolExecutor(settings.inflight, thread_name_prefix="podium-infer"),
            decoder=settings.decoder(),
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
