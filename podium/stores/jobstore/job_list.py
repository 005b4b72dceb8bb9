"""The job list: jobs newest first, a page at a time, pruned of expired ids as it is read."""

from __future__ import annotations

from collections.abc import Callable

import redis

from podium.core.jobs import Job
from podium.stores.jobstore.records import JobPage
from podium.stores.jobstore.schema import JOB_HASH, JOBS_INDEX_KEY, JobKeys


def list_jobs(
    client: redis.Redis,
    limit: int,
    cursor: str = "",
    visible: Callable[[Job], bool] = lambda job: True,
    scan_max: int = 10_000,
) -> JobPage:
    """Jobs newest first for which ``visible`` holds, at most ``limit``, from ``cursor`` (a
    previous page's ``next_cursor``). Ids whose job expired are pruned from the index here;
    at most ``scan_max`` index entries are read per page, so a filter matching little
    cannot hold the call for long (the page is then short, with a cursor to go on)."""
    high = f"({cursor}" if cursor else "+inf"
    found: list[Job] = []
    scanned = 0
    while scanned < scan_max:
        batch = client.zrevrangebyscore(JOBS_INDEX_KEY, high, "-inf", start=0, num=200, withscores=True)
        if not batch:
            return JobPage(found, "")
        with client.pipeline(transaction=False) as pipe:
            for job_id, _ in batch:
                pipe.hgetall(JobKeys(job_id.decode()).job)
            records = pipe.execute()
        gone = [job_id for (job_id, _), raw in zip(batch, records) if not raw]
        if gone:
            client.zrem(JOBS_INDEX_KEY, *gone)
        for (_, score), raw in zip(batch, records):
            scanned += 1
            high = f"({score!r}"
            if raw and visible(job := JOB_HASH.to_job(raw)):
                found.append(job)
                if len(found) == limit:
                    return JobPage(found, high[1:])
    return JobPage(found, high[1:])
