"""The worker's Celery app: the chunk task and its per-process set-up."""

from __future__ import annotations

import logging
import time

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from inference import TritonUnavailable
from jobstore.errors import StoreFull, StoreUnavailable
from jobstore.queue import PROCESS_CHUNK_TASK, make_celery
from worker.chunks import fail_chunk, process_chunk
from worker.runtime import close_runtime, get_runtime, reset_runtime
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

# After this many task retries of an unavailable Triton, a chunk's images fail.
MAX_TRITON_RETRIES = 3
RETRY_COUNTDOWN_S = 10
# How long a task waits for Redis to come back before it gives the chunk up to the
# reconciler (which re-enqueues chunks of stalled jobs).
REDIS_WAIT_S = 300.0


def wait_for_redis(rt, timeout_s: float) -> None:
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

    @app.task(name=PROCESS_CHUNK_TASK, bind=True, max_retries=MAX_TRITON_RETRIES)
    def process_chunk_task(self, job_id: str, chunk: int) -> int:
        rt = get_runtime(app, settings)
        try:
            return process_chunk(rt, job_id, chunk)
        except TritonUnavailable as exc:
            if self.request.retries >= MAX_TRITON_RETRIES:
                log.error("job %s chunk %d: giving up, Triton unavailable: %s", job_id, chunk, exc)
                fail_chunk(rt, job_id, chunk, f"inference server unavailable: {exc}")
                return 0
            raise self.retry(exc=exc, countdown=RETRY_COUNTDOWN_S)
        except (StoreUnavailable, StoreFull) as exc:
            # Redis holds the job and the queue: wait for it, then run the chunk again.
            log.warning("job %s chunk %d: Redis unavailable (%s); waiting for it", job_id, chunk, exc)
            wait_for_redis(rt, REDIS_WAIT_S)
            raise self.retry(exc=exc, countdown=1, max_retries=None) from None

    @worker_process_init.connect(weak=False)
    def _fresh_clients_after_fork(**_: object) -> None:
        reset_runtime()

    @worker_process_shutdown.connect(weak=False)
    def _close_clients(**_: object) -> None:
        close_runtime()

    return app
