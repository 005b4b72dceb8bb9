"""JobStore: the only code that knows how jobs are laid out in Redis."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence

import redis

from podium.core.jobs import FailureLimit, ImageOutcome, Job, JobMode, JobOptions, JobState, RecordedOutcome
from podium.core.settings import DEFAULT_RESULT_TTL_S
from podium.stores.jobstore import scripts
from podium.stores.jobstore.claims import JobKeyBindings, NamedClaims
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.job_list import list_jobs
from podium.stores.jobstore.quota import queued_images
from podium.stores.jobstore.records import ChunkClaim, ChunkRecords, JobEndSignal, JobPage, Stamp
from podium.stores.jobstore.schema import (
    ACTIVE_JOBS_KEY,
    COMPACT_QUEUE_KEY,
    JOB_HASH,
    JOBS_INDEX_KEY,
    WEBHOOK_QUEUE_KEY,
    JobKeys,
    delta_key_name,
    job_key_name,
)
from podium.stores.jobstore.webhook_queue import DEFAULT_WEBHOOK_LEASE_S, WebhookQueue

SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
# A pooled connection idle this long is pinged before use (a restarted Redis is noticed).
HEALTH_CHECK_INTERVAL_S = 15
NO_OPTIONS = JobOptions()


@convert_redis_errors
class JobStore(NamedClaims, JobKeyBindings):
    """Job records, file lists, results and upload blobs, with atomic state changes; named
    claims and job keys are its roles in ``claims``."""

    def __init__(self, client: redis.Redis, result_ttl_s: int = DEFAULT_RESULT_TTL_S) -> None:
        self._redis = client
        self._webhooks = WebhookQueue(client)
        self._ttl_s = result_ttl_s
        self._record = client.register_script(scripts.RECORD_RESULT)
        self._record_many = client.register_script(scripts.RECORD_RESULTS)
        self._finish_upload = client.register_script(scripts.FINISH_UPLOAD)
        self._dispatch = client.register_script(scripts.DISPATCH_CHUNKS)
        self._end = client.register_script(scripts.END_JOB)
        self._complete_chunk = client.register_script(scripts.COMPLETE_CHUNK)
        self._count_attempt = client.register_script(scripts.COUNT_ATTEMPT)
        self._acquire_chunk = client.register_script(scripts.ACQUIRE_CHUNK)
        self._renew_chunk = client.register_script(scripts.RENEW_CHUNK)
        self._release_chunk = client.register_script(scripts.RELEASE_CHUNK)
        self._append_files = client.register_script(scripts.APPEND_FILES)

    @classmethod
    def from_url(
        cls, url: str, result_ttl_s: int = DEFAULT_RESULT_TTL_S, socket_timeout_s: float = SOCKET_TIMEOUT_S
    ) -> JobStore:
        """A store on a client whose calls give up after ``socket_timeout_s``: a frozen Redis
        becomes StoreUnavailable within seconds instead of a hung thread."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=min(socket_timeout_s, CONNECT_TIMEOUT_S),
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            socket_keepalive=True,
        )
        return cls(client, result_ttl_s)

    @property
    def client(self) -> redis.Redis:
        """The Redis client, for the stores that share it (the result cache)."""
        return self._redis

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def queue_length(self, queue: str) -> int:
        """Chunk tasks waiting in a Celery queue (a Redis list of the same name)."""
        return int(self._redis.llen(queue))

    def used_memory_bytes(self) -> int:
        return int(self._redis.info("memory")["used_memory"])  # all of Redis's, in bytes

    # --- creating and filling a job -------------------------------------------------

    def create(self, *, mode: JobMode, chunk_size: int, options: JobOptions = NO_OPTIONS, **record: object) -> Job:
        """A new, uploading job: ``options`` as resolved, ``record`` other Job fields (root, owner, ...)."""
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

    def append_files(self, job_id: str, start: int, paths: Sequence[str], blobs: Sequence[bytes | None] = ()) -> bool:
        """Add files at indices start.. while the job uploads (its only writer does); false if it
        is not uploading any more (cancelled, failed), in which case nothing is written."""
        if not paths:
            return True
        pairs: list[object] = []
        for offset, blob in enumerate(blobs):
            if blob is not None:
                pairs += [start + offset, blob]
        args = [time.time(), start + len(paths), len(paths), *paths, *pairs]
        return int(self._append_files(keys=JobKeys(job_id).all, args=args)) == 1

    def finish_upload(self, job_id: str) -> None:
        self._finish_upload(keys=JobKeys(job_id).ending, args=[time.time(), self._ttl_s])

    # --- reading ---------------------------------------------------------------------

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

    def queued_images(self, owner: str) -> int:
        return queued_images(self._redis, owner)

    def pending_uploads(self, job_id: str) -> tuple[int, int]:
        """(images, bytes) uploaded to the job that no worker has finished yet."""
        keys = JobKeys(job_id)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.blobs)
            pipe.hget(keys.job, "pending_bytes")
            count, nbytes = pipe.execute()
        return int(count), int(nbytes or 0)

    def memory_used_fraction(self) -> float | None:
        """Redis's used memory as a fraction of its maxmemory; None when it has no limit."""
        memory = self._redis.info("memory")
        limit = int(memory.get("maxmemory", 0))
        return int(memory["used_memory"]) / limit if limit else None

    def chunk_size(self, job_id: str) -> int:
        return int(self._redis.hget(JobKeys(job_id).job, "chunk_size") or 1)

    def files(self, job_id: str, start: int, stop: int) -> list[str]:
        """Relative paths of images start..stop-1."""
        return [p.decode() for p in self._redis.lrange(JobKeys(job_id).paths, start, stop - 1)]

    def result_count(self, job_id: str) -> int:
        """How many images of the job have a stored outcome."""
        return int(self._redis.hlen(JobKeys(job_id).results))

    def blob(self, job_id: str, index: int) -> bytes | None:
        return self._redis.hget(JobKeys(job_id).blobs, str(index))

    def results(self, job_id: str, start: int, count: int) -> list[tuple[str, ImageOutcome | None]]:
        """(path, outcome or None if unfinished) of images start..start+count-1 that exist."""
        return [(path, None if r is None else ImageOutcome.decode(r)) for path, r in self._raw(job_id, start, count)]

    def recorded(self, job_id: str, start: int, count: int) -> list[tuple[str, RecordedOutcome | None]]:
        """``results``, with each record's time and digest (what a result file holds)."""
        return [(path, None if r is None else RecordedOutcome.decode(r)) for path, r in self._raw(job_id, start, count)]

    def chunk_records(self, job_id: str, chunk: int, start: int, count: int) -> ChunkRecords:
        """Whether the chunk was counted done (a job with a results sink: its file landed and its
        records left Redis) and ``recorded``'s answer for start..start+count-1, read together."""
        keys = JobKeys(job_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.sismember(keys.chunks, chunk)
            pipe.lrange(keys.paths, start, start + count - 1)
            pipe.hmget(keys.results, [str(start + i) for i in range(count)])
            done, paths, raw = pipe.execute()
        records = [(p.decode(), None if r is None else RecordedOutcome.decode(r)) for p, r in zip(paths, raw)]
        return ChunkRecords(bool(done), records)

    def _raw(self, job_id: str, start: int, count: int) -> list[tuple[str, bytes | None]]:
        keys = JobKeys(job_id)
        paths = self._redis.lrange(keys.paths, start, start + count - 1)
        if not paths:
            return []
        raw = self._redis.hmget(keys.results, [str(start + i) for i in range(len(paths))])
        return [(p.decode(), r) for p, r in zip(paths, raw, strict=True)]

    # --- progress --------------------------------------------------------------------

    def dispatch(self, job_id: str, max_queued_chunks: int) -> list[int]:
        """Claim the job's next chunks to enqueue, keeping at most max_queued_chunks in flight."""
        return [int(c) for c in self._dispatch(keys=JobKeys(job_id).all, args=[max_queued_chunks])]

    def record(
        self, job_id: str, index: int, outcome: ImageOutcome, cached: bool = False, stamp: Stamp | None = None
    ) -> bool:
        """Store an image's outcome once; a repeat (redelivered chunk) is a no-op. ``cached``:
        the outcome is a duplicate's, from the result cache (counted in Job.cached). ``stamp``
        (jobs with a results sink): the record also keeps its time and the bytes' digest."""
        now = time.time()
        payload = outcome.encode(now, stamp.sha256) if stamp else outcome.encode()
        recorded = self._record(
            keys=JobKeys(job_id).ending,
            args=[index, payload, "1" if outcome.ok else "0", now, self._ttl_s, int(cached)],
        )
        return int(recorded) == 1

    def record_many(
        self,
        job_id: str,
        results: Sequence[tuple[int, ImageOutcome, bool]],
        stamps: Mapping[int, Stamp] | None = None,
    ) -> list[bool]:
        """``record`` of (index, outcome, cached) each, in one round trip; whether each was
        recorded. ``stamps``: each index's stamp, as ``record``'s."""
        now = time.time()
        args: list[object] = [now, self._ttl_s]
        for index, outcome, cached in results:
            stamp = stamps.get(index) if stamps is not None else None
            payload = outcome.encode(now, stamp.sha256) if stamp else outcome.encode()
            args += [index, payload, "1" if outcome.ok else "0", int(cached)]
        answers = self._record_many(keys=JobKeys(job_id).ending, args=args) if results else []
        return [int(answer) == 1 for answer in answers]

    def compactions_due(self, ended_before: float, limit: int = 100) -> list[str]:
        """Ended jobs with result files not compacted yet, that ended before ``ended_before``."""
        return [j.decode() for j in self._redis.zrangebyscore(COMPACT_QUEUE_KEY, "-inf", ended_before, 0, limit)]

    def compacted(self, job_id: str) -> None:
        """The job's result files are compacted (or gone): off the compaction queue."""
        self._redis.zrem(COMPACT_QUEUE_KEY, job_id)

    def set_unchanged(self, job_id: str, count: int) -> None:
        """A delta job's entries carried over from its baseline (set once, before it starts)."""
        self._redis.hset(JobKeys(job_id).job, "unchanged", count)

    def last_delta_job(self, owner: str, name: str) -> Job | None:
        """The last completed job of the delta job name ``name`` of ``owner``, if still kept."""
        job_id = self._redis.get(delta_key_name(owner, name))
        return self.get(job_id.decode()) if job_id else None

    def complete_chunk(self, job_id: str, chunk: int) -> bool:
        """Count the chunk as done; true if that completed the job (a job with a results sink
        completes when its last chunk's file landed)."""
        ended = self._complete_chunk(keys=JobKeys(job_id).ending, args=[chunk, time.time(), self._ttl_s])
        return int(ended) == 2

    # --- chunk leases and crash accounting -------------------------------------------

    def acquire_chunk(self, job_id: str, chunk: int, token: str, lease_s: float) -> ChunkClaim:
        """Take the chunk for this worker (see ChunkClaim); a start counts until released."""
        keys = JobKeys(job_id).with_lease(chunk)
        outcome, value = self._acquire_chunk(keys=keys, args=[chunk, token, max(1, int(lease_s))])
        return ChunkClaim(outcome.decode() if isinstance(outcome, bytes) else outcome, int(value))

    def renew_chunk(self, job_id: str, chunk: int, token: str, lease_s: float) -> bool:
        """Extend this worker's lease; false if it was lost (expired and taken, or job gone)."""
        return bool(self._renew_chunk(keys=JobKeys(job_id).with_lease(chunk), args=[token, max(1, int(lease_s))]))

    def release_chunk(self, job_id: str, chunk: int, token: str) -> None:
        """The start ended in order (done, retried, or failed with an error): not a crash."""
        self._release_chunk(keys=JobKeys(job_id).with_lease(chunk), args=[chunk, token])

    def chunk_leased(self, job_id: str, chunk: int) -> bool:
        return bool(self._redis.exists(JobKeys(job_id).lease(chunk)))

    def begin_image(self, job_id: str, index: int) -> int:
        """Count one more careful start of this image; returns how often it started before."""
        return max(0, int(self._count_attempt(keys=JobKeys(job_id).all, args=[f"i:{index}", 1])) - 1)

    def end_image(self, job_id: str, index: int) -> None:
        """The careful start of an image ended without the process dying."""
        self._count_attempt(keys=JobKeys(job_id).all, args=[f"i:{index}", -1])

    def done_chunks(self, job_id: str) -> set[int]:
        return {int(c) for c in self._redis.smembers(JobKeys(job_id).chunks)}

    def dispatched_chunks(self, job_id: str) -> int:
        return int(self._redis.hget(JobKeys(job_id).job, "dispatched") or 0)

    def active_job_ids(self) -> list[str]:
        return [j.decode() for j in self._redis.smembers(ACTIVE_JOBS_KEY)]

    def delete(self, job_id: str) -> bool:
        """Remove every key of the job (ending it first if it runs); false if there was none."""
        keys = JobKeys(job_id)
        job = self.get(job_id)
        existed = job is not None
        self.cancel(job_id)
        if job is not None and job.job_key:
            self._unbind(keys=[job_key_name(job.owner, job.job_key)], args=[job_id])
        leases = list(self._redis.scan_iter(match=f"{keys.job}:lease:*", count=1000))
        with self._redis.pipeline() as pipe:
            pipe.delete(keys.job, keys.paths, keys.results, keys.blobs, keys.chunks, keys.attempts, *leases)
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

    def all_files(self, job_id: str, page: int = 10_000) -> Iterator[str]:
        """Every path of the job, in order, a page at a time."""
        start = 0
        while paths := self.files(job_id, start, start + page):
            yield from paths
            start += len(paths)

    # --- webhooks --------------------------------------------------------------------

    def take_webhook(self, timeout_s: float, lease_s: float = DEFAULT_WEBHOOK_LEASE_S) -> str | None:
        """The next ended job whose webhook is due (leased to this caller until ``webhook_sent``,
        while renewed), or None after ``timeout_s``."""
        return self._webhooks.take(timeout_s, lease_s)

    def renew_webhook_lease(self, job_id: str, lease_s: float) -> bool:
        return self._webhooks.renew(job_id, lease_s)

    def webhook_sent(self, job_id: str) -> None:
        """Delivered, or given up: off the sending list."""
        self._webhooks.done(job_id)

    def requeue_webhooks(self) -> int:
        """Deliveries a gateway left half done (it died: its lease ran out) go back to the queue."""
        return self._webhooks.requeue_orphans()
