"""The worker's Celery app: the chunk task and its per-process set-up."""

from __future__ import annotations

import logging
import time

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from podium.core.allocator import tune_malloc
from podium.core.cpus import keep_to_cpus
from podium.stores.jobstore.errors import StoreFull, StoreUnavailable
from podium.stores.jobstore.queue import PROCESS_CHUNK_TASK, make_celery
from podium.stores.resultsink import SinkUnavailable
from worker.chunks import process_chunk
from worker.metrics import prepare_multiprocess_dir, serve_metrics
from worker.runtime import Runtime, close_runtime, get_runtime, reset_runtime
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

# How long a task waits for Redis to come back before it gives the chunk up to the
# reconciler (which re-enqueues chunks of stalled jobs).
REDIS_WAIT_S = 300.0
_MARGIN_S = 60.0
# The longest wait between tries of a chunk whose file the results sink refused.
SINK_RETRY_MAX_S = 30.0


def wait_for_redis(rt: Runtime, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if rt.store.ping():
                return
        except StoreUnavailable:
            pass
        time.sleep(1.0)


def create_app(settings: WorkerSettings) -> Celery:
    app = make_celery(settings.redis_url, settings.visibility_timeout_s)
    if settings.metrics_port:
        prepare_multiprocess_dir()  # before the pool forks (see worker.metrics)
    # A chunk running past this is stuck: Celery kills its process (counted as a death).
    app.conf.task_time_limit = settings.task_time_limit_s
    if settings.visibility_timeout_s < settings.task_time_limit_s + _MARGIN_S:
        log.warning(
            "PODIUM_VISIBILITY_TIMEOUT_S (%d s) is shorter than a chunk may run (%.0f s): a running chunk may be "
            "delivered again; its lease makes the copy wait, but set it above the time limit",
            settings.visibility_timeout_s,
            settings.task_time_limit_s,
        )

    @app.task(name=PROCESS_CHUNK_TASK, bind=True, max_retries=None)
    def process_chunk_task(self, job_id: str, chunk: int) -> int:
        rt = get_runtime(app, settings)
        try:
            run = process_chunk(rt, job_id, chunk)
        except (StoreUnavailable, StoreFull) as exc:
            # Redis holds the job and the queue: wait for it, then run the chunk again.
            log.warning("job %s chunk %d: Redis unavailable (%s); waiting for it", job_id, chunk, exc)
            wait_for_redis(rt, REDIS_WAIT_S)
            raise self.retry(exc=exc, countdown=1) from None
        except SinkUnavailable as exc:
            return _sink_refused(self, rt, job_id, chunk, exc)
        if run.retry_in_s is not None:
            # Another worker holds the chunk's lease: come back when it would end.
            raise self.retry(countdown=run.retry_in_s)
        return run.recorded

    def _sink_refused(task, rt: Runtime, job_id: str, chunk: int, exc: SinkUnavailable) -> int:
        # The chunk's answers are recorded; only its file is missing: it is tried again until
        # the sink's outage passes its limit, and then the job fails with the reason.
        lasted_s = rt.sink_outage.failing(gap_s=SINK_RETRY_MAX_S * 2)
        if lasted_s >= settings.results_sink_outage_limit_s:
            log.error("job %s chunk %d: %s for %.0f s; failing the job", job_id, chunk, exc, lasted_s)
            rt.store.fail(job_id, f"{exc} (for {lasted_s:.0f} s); its answers could not be written")
            return 0
        log.warning("job %s chunk %d: %s; trying again", job_id, chunk, exc)
        raise task.retry(exc=exc, countdown=min(SINK_RETRY_MAX_S, 1.0 + lasted_s / 2)) from None

    @worker_init.connect(weak=False)
    def _start_main_process(**_: object) -> None:
        if settings.cpu_affinity:  # before the pool forks: its processes and their threads inherit it
            keep_to_cpus(settings.cpu_affinity)
        if settings.metrics_port:  # in the main process, which outlives its pool processes
            serve_metrics(settings.metrics_host, settings.metrics_port)

    @worker_process_init.connect(weak=False)
    def _fresh_clients_after_fork(**_: object) -> None:
        tune_malloc()  # the pool process decodes and sends: megabytes allocated per request
        reset_runtime()

    @worker_process_shutdown.connect(weak=False)
    def _close_clients(**_: object) -> None:
        close_runtime()

    return app
