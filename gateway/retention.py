"""Result files kept for PODIUM_RESULTS_RETENTION_DAYS: older job folders are removed.

One gateway at a time sweeps (a claim in Redis), once an hour; a running job's folder is
never touched. On S3 a lifecycle rule on the prefix does the same without the gateway
(docs/archive.md). The same sweep removes the temporary files of writers killed mid-file
(on disk; an S3 PUT leaves none), whatever the retention.
"""

from __future__ import annotations

import logging
import time

from podium.stores.jobstore import JobStore
from podium.stores.resultsink import Sink

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0
DAY_S = 86_400
STALE_TEMPORARY_S = 3600.0  # a live writer touches its file with every write


class Retention:
    def __init__(self, store: JobStore, sink: Sink, days: int) -> None:
        self._store, self._sink, self.days = store, sink, days

    def run_once(self, now: float | None = None) -> list[str]:
        """Sweep killed writers' temporary files, then remove the folders of jobs whose newest
        file is older than the retention; the ids of the jobs removed."""
        if not self._store.claim("results-retention", SWEEP_INTERVAL_S):
            return []
        now = now or time.time()
        swept = self._sink.sweep_temporaries(now - STALE_TEMPORARY_S)
        if swept:
            log.info("removed %d temporary result files left by writers that died mid-file", swept)
        if self.days <= 0:
            return []
        cutoff = now - self.days * DAY_S
        running = set(self._store.active_job_ids())
        expired = [job for job, at in self._sink.last_written().items() if at < cutoff and job not in running]
        for job_id in expired:
            self._sink.remove_job(job_id)
        if expired:
            log.info(
                "removed the result files of %d jobs older than %d days from %s",
                len(expired),
                self.days,
                self._sink.url,
            )
        return expired
