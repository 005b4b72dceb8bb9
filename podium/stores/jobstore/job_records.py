"""Job records: created, read, listed, ended and deleted; the delta and compaction bookkeeping of ended jobs.

A role of ``JobStore`` (``store``), over the one Redis layout of ``schema``."""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Callable

import redis

from podium.core.jobs import FailureLimit, Job, JobMode, JobOptions, JobState
from podium.stores.jobstore import scripts
from podium.stores.jobstore.chunk_layout import FIELDS as LAYOUT_FIELDS
from podium.stores.jobstore.chunk_layout import ChunkLayout
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.job_list import list_jobs
from podium.stores.jobstore.quota import queued_images
from podium.stores.jobstore.records import JobEndSignal, JobPage
from podium.stores.jobstore.schema import (
    ACTIVE_JOBS_KEY,
    COMPACT_QUEUE_KEY,
    JOB_HASH,
    JOBS_INDEX_KEY,
    WEBHOOK_QUEUE_KEY,
    JobKeys,
    delta_key_name,
)

NO_OPTIONS = JobOptions()


@convert_redis_errors
class JobRecords:
    """Job records: created, read, listed, ended and deleted; the delta and compaction bookkeeping of ended jobs."""

    _redis: redis.Redis
    _ttl_s: int
    unbind_job_key: Callable[[str, str, str], None]  # JobKeyBindings's, beside it in JobStore

    @functools.cached_property
    def _end(self):
        return self._redis.register_script(scripts.END_JOB)

    def create(
        self,
        *,
        mode: JobMode,
        chunk_size: int,
        options: JobOptions = NO_OPTIONS,
        max_chunk_size: int = 0,
        chunk_seconds: float = 0.0,
        **record: object,
    ) -> Job:
        """A new, uploading job: ``options`` as resolved, ``record`` other Job fields (root, owner, ...).
        Its chunks have ``chunk_size`` images; with ``max_chunk_size`` above it they grow up to it,
        to about ``chunk_seconds`` of a worker's measured time each (``chunk_layout``)."""
        job_id = uuid.uuid4().hex
        now = time.time()
        keys = JobKeys(job_id)
        values = dataclasses.asdict(options) | record
        limit = FailureLimit.parse(str(values["max_failed"]))
        fields = JOB_HASH.new(
            **(values | {"max_failed": limit.text}),
            id=job_id,
            mode=mode,
            chunk_size=chunk_size,
            max_chunk_size=max_chunk_size,
            chunk_seconds=chunk_seconds,
            created_at=now,
            updated_at=now,
            fail_count_limit=-1 if limit.count is None else limit.count,
            fail_percent_limit=-1.0 if limit.percent is None else limit.percent,
        )
        with self._redis.pipeline() as pipe:
            pipe.hset(keys.job, mapping=fields)
            pipe.sadd(ACTIVE_JOBS_KEY, job_id)
            pipe.zadd(JOBS_INDEX_KEY, {job_id: now})
            pipe.execute()
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: str) -> Job | None:
        fields = self._redis.hgetall(JobKeys(job_id).job)
        return JOB_HASH.to_job(fields) if fields else None

    def end_signal(self, job_id: str) -> JobEndSignal:
        """Subscribe before reading the job's state, so that no ending is missed."""
        return JobEndSignal(self._redis, job_id)

    def state(self, job_id: str) -> JobState | None:
        raw = self._redis.hget(JobKeys(job_id).job, "state")
        return JobState(raw.decode()) if raw else None

    def active_jobs(self) -> int:
        return int(self._redis.scard(ACTIVE_JOBS_KEY))

    def active_job_ids(self) -> list[str]:
        return [j.decode() for j in self._redis.smembers(ACTIVE_JOBS_KEY)]

    def queued_images(self, owner: str) -> int:
        return queued_images(self._redis, owner)

    def chunk_layout(self, job_id: str) -> ChunkLayout:
        """Which images each of the job's chunks holds (fixed for every chunk dispatched)."""
        return ChunkLayout.stored(*self._redis.hmget(JobKeys(job_id).job, LAYOUT_FIELDS))

    def set_unchanged(self, job_id: str, count: int) -> None:
        """A delta job's entries carried over from its baseline (set once, before it starts)."""
        self._redis.hset(JobKeys(job_id).job, "unchanged", count)

    def last_delta_job(self, owner: str, name: str) -> Job | None:
        """The last completed job of the delta job name ``name`` of ``owner``, if still kept."""
        job_id = self._redis.get(delta_key_name(owner, name))
        return self.get(job_id.decode()) if job_id else None

    def compactions_due(self, ended_before: float, limit: int = 100) -> list[str]:
        """Ended jobs with result files not compacted yet, that ended before ``ended_before``."""
        return [j.decode() for j in self._redis.zrangebyscore(COMPACT_QUEUE_KEY, "-inf", ended_before, 0, limit)]

    def compacted(self, job_id: str) -> None:
        """The job's result files are compacted (or gone): off the compaction queue."""
        self._redis.zrem(COMPACT_QUEUE_KEY, job_id)

    def delete(self, job_id: str) -> bool:
        """Remove every key of the job (ending it first if it runs); false if there was none."""
        keys = JobKeys(job_id)
        job = self.get(job_id)
        existed = job is not None
        self.cancel(job_id)
        if job is not None and job.job_key:
            self.unbind_job_key(job.owner, job.job_key, job_id)  # the job-key role (claims)
        leases = list(self._redis.scan_iter(match=f"{keys.job}:lease:*", count=1000))
        with self._redis.pipeline() as pipe:
            pipe.delete(
                keys.job, keys.paths, keys.results, keys.blobs, keys.large_blobs, keys.chunks, keys.attempts, *leases
            )
            pipe.srem(ACTIVE_JOBS_KEY, job_id)
            pipe.zrem(JOBS_INDEX_KEY, job_id)
            pipe.zrem(COMPACT_QUEUE_KEY, job_id)
            pipe.lrem(WEBHOOK_QUEUE_KEY, 0, job_id)
            pipe.execute()
        return existed

    def job_memory_bytes(self, job_id: str) -> int:
        """Bytes Redis holds for the job's keys (MEMORY USAGE): what a job costs the store."""
        return sum(int(self._redis.memory_usage(key, samples=0) or 0) for key in self.job_keys(job_id))

    def job_keys(self, job_id: str) -> list[str]:
        """Every key of the job that exists (tests and `podium delete` check that none is left)."""
        return [key.decode() for key in self._redis.scan_iter(match=f"{JobKeys(job_id).job}*", count=1000)]

    def cancel(self, job_id: str) -> bool:
        return self._end_job(job_id, JobState.CANCELLED, "")

    def fail(self, job_id: str, error: str) -> bool:
        return self._end_job(job_id, JobState.FAILED, error)

    def _end_job(self, job_id: str, state: JobState, error: str) -> bool:
        ended = self._end(keys=JobKeys(job_id).ending, args=[state.value, error, time.time(), self._ttl_s])
        return int(ended) == 1

    def list_jobs(
        self, limit: int, cursor: str = "", visible: Callable[[Job], bool] = lambda job: True, scan_max: int = 10_000
    ) -> JobPage:
        """Jobs newest first for which ``visible`` holds (see ``podium.stores.jobstore.job_list.list_jobs``)."""
        return list_jobs(self._redis, limit, cursor, visible, scan_max)
