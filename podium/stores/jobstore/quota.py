"""What one owner has waiting: images of its unfinished jobs that no worker has answered yet."""

from __future__ import annotations

import redis

from podium.stores.jobstore.schema import ACTIVE_JOBS_KEY, JobKeys


def queued_images(client: redis.Redis, owner: str) -> int:
    """Sum of total - succeeded - failed over ``owner``'s active jobs (at most max_active_jobs)."""
    ids = [raw.decode() for raw in client.smembers(ACTIVE_JOBS_KEY)]
    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(JobKeys(job_id).job, "owner", "total", "succeeded", "failed")
        rows = pipe.execute()
    queued = 0
    for job_owner, total, succeeded, failed in rows:
        if (job_owner or b"").decode() == owner:
            queued += int(total or 0) - int(succeeded or 0) - int(failed or 0)
    return max(queued, 0)
