"""The reconciler: the safety net under at-least-once delivery.

Celery's Redis transport redelivers a chunk whose worker died once its visibility
timeout passes. Some losses it cannot see: a gateway or worker that died between
claiming a chunk and enqueuing it, or a Redis crash that kept the claim but lost the
message (AOF ``everysec`` keeps a prefix of the writes). A job that made no progress for
``stall_s`` therefore gets its unfinished chunks enqueued again; results are idempotent,
so a chunk that was merely slow costs only duplicate work.
"""

from __future__ import annotations

import logging
import time

from gateway.uploads import upload_lease
from podium.core.jobs import JobState
from podium.stores.jobstore import ChunkQueue, JobStore

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, store: JobStore, queue: ChunkQueue, stall_s: float, upload_stall_s: float) -> None:
        self._store = store
        self._queue = queue
        self.stall_s = stall_s
        self.upload_stall_s = upload_stall_s

    def run_once(self) -> int:
        """Look at every active job once; returns how many chunks were enqueued again."""
        resent = 0
        now = time.time()
        for job_id in self._store.active_job_ids():
            job = self._store.get(job_id)
            if job is None or job.state.terminal:
                continue
            idle_s = now - job.updated_at
            if job.state is JobState.UPLOADING:
                # An upload in hand (its gateway renews the lease, also while backpressure pauses
                # it) is not interrupted, however long it has added nothing.
                if idle_s > self.upload_stall_s and not self._store.claim_held(upload_lease(job_id)):
                    # The gateway that received this upload died: nobody will finish it.
                    log.warning("job %s: upload silent for %.0f s; failing it", job_id, idle_s)
                    self._store.fail(job_id, "the upload was interrupted (no data for a long time)")
                continue
            if idle_s < self.stall_s or not self._store.claim(f"reconcile:{job_id}", self.stall_s):
                continue
            done = self._store.done_chunks(job_id)
            # A leased chunk is running (its worker renews the lease): only the others are lost.
            missing = [
                c
                for c in range(self._store.dispatched_chunks(job_id))
                if c not in done and not self._store.chunk_leased(job_id, c)
            ]
            for chunk in missing:
                self._queue.send(job_id, chunk)
            resent += len(missing)
            self._queue.pump(job_id)
            if missing:
                log.warning("job %s: no progress for %.0f s; enqueued chunks %s again", job_id, idle_s, missing)
        return resent
