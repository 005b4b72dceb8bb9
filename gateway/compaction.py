"""Result files a worker left uncompacted are compacted by a gateway.

The worker whose chunk ends a job compacts its parts; one that died first, or found the
sink away, leaves the job on the compaction queue, and so do cancelled and failed jobs
(no worker ends them). A gateway's housekeeping takes jobs that ended a while ago (the
grace lets a chunk still running after a cancel land its part first), one gateway per
job at a time (a claim in Redis).
"""

from __future__ import annotations

import logging
import time

from podium.stores.jobstore import JobStore
from podium.stores.resultsink import compact_quietly, open_sink, remove_if_deleted

log = logging.getLogger(__name__)

GRACE_S = 60.0
PER_ROUND = 20


class Compactions:
    def __init__(self, store: JobStore, grace_s: float = GRACE_S) -> None:
        self._store, self._grace_s = store, grace_s

    def run_once(self, now: float | None = None) -> list[str]:
        """Compact what is due; the ids of the jobs done (or gone)."""
        done = []
        for job_id in self._store.compactions_due((now or time.time()) - self._grace_s, PER_ROUND):
            if not self._store.claim(f"compact:{job_id}", 600):
                continue
            try:
                job = self._store.get(job_id)
                if job is None or not job.results_url:
                    self._store.compacted(job_id)
                    done.append(job_id)
                    continue
                sink = open_sink(job.results_url)
                if compact_quietly(sink, job_id):
                    self._store.compacted(job_id)
                    done.append(job_id)
                remove_if_deleted(self._store, sink, job_id)
            finally:
                self._store.release_claim(f"compact:{job_id}")
        if done:
            log.info("compacted the result files of %d ended jobs", len(done))
        return done
