"""Chunks dispatched, leased to a worker, counted done; careful starts of images after crashes.

A role of ``JobStore`` (``store``), over the one Redis layout of ``schema``."""

from __future__ import annotations

import functools
import time

import redis

from podium.stores.jobstore import scripts
from podium.stores.jobstore.chunk_layout import FIELDS as LAYOUT_FIELDS
from podium.stores.jobstore.chunk_layout import ChunkLayout, HeldBack
from podium.stores.jobstore.chunk_rates import ChunkRates, chunk_size_for
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.records import ChunkClaim
from podium.stores.jobstore.schema import JobKeys

# A job's last chunks shrink to a share of what is left, but not below this (or its first
# chunks' size): fewer images per chunk would cost more in messages than the tail saves.
TAIL_FEWEST_IMAGES = 64


@convert_redis_errors
class ChunkLeases:
    """Chunks dispatched, leased to a worker, counted done; careful starts of images after crashes."""

    _redis: redis.Redis
    _ttl_s: int

    @functools.cached_property
    def _dispatch(self):
        return self._redis.register_script(scripts.DISPATCH_CHUNKS)

    @functools.cached_property
    def _complete_chunk(self):
        return self._redis.register_script(scripts.COMPLETE_CHUNK)

    @functools.cached_property
    def _count_attempt(self):
        return self._redis.register_script(scripts.COUNT_ATTEMPT)

    @functools.cached_property
    def _acquire_chunk(self):
        return self._redis.register_script(scripts.ACQUIRE_CHUNK)

    @functools.cached_property
    def _renew_chunk(self):
        return self._redis.register_script(scripts.RENEW_CHUNK)

    @functools.cached_property
    def _release_chunk(self):
        return self._redis.register_script(scripts.RELEASE_CHUNK)

    def dispatch(self, job_id: str, max_queued_chunks: int, partial: bool | HeldBack = HeldBack.NO) -> list[int]:
        """Claim the job's next chunks to enqueue, keeping at most max_queued_chunks in flight;
        they are larger than the last ones when the workers' rate says so, and smaller near the
        job's end, a share of what is left each (``chunk_layout``). With ``partial`` (true: by
        its limits), an upload's files that fill no whole chunk yet go out as a smaller one when
        none of its chunks is in flight (an upload held back), and its later chunks take a
        quarter of that many; held by Redis's memory, at least half their size."""
        grow, parts, fewest = self._sizing(job_id, max_queued_chunks)
        args = [max_queued_chunks, grow, parts, fewest, int(partial)]
        return [int(c) for c in self._dispatch(keys=JobKeys(job_id).all, args=args)]

    def _sizing(self, job_id: str, max_queued_chunks: int) -> tuple[int, int, int]:
        """(the size the job's next chunks should grow to, or 0: they keep theirs; the parts its
        last images are shared in, 0 for a job whose chunks keep one size; the fewest images a
        chunk of them gets)."""
        model, seconds, most, *layout = self._redis.hmget(
            JobKeys(job_id).job, "model_name", "chunk_seconds", "max_chunk_size", *LAYOUT_FIELDS
        )
        stored = ChunkLayout.stored(*layout)
        now, first = stored.newest_size, stored.segments[0].size
        most, seconds = int(most or 0), float(seconds or 0)
        if most <= 0 or seconds <= 0 or not model:
            return 0, 0, 1
        fewest = min(first, TAIL_FEWEST_IMAGES)
        if most <= now:
            return 0, max_queued_chunks, fewest
        wanted = chunk_size_for(ChunkRates(self._redis).rate(model.decode()), seconds, now, most)
        return (wanted if wanted > now else 0), max_queued_chunks, fewest

    def complete_chunk(self, job_id: str, chunk: int) -> bool:
        """Count the chunk as done; true if that completed the job (a job with a results sink
        completes when its last chunk's file landed)."""
        ended = self._complete_chunk(keys=JobKeys(job_id).ending, args=[chunk, time.time(), self._ttl_s])
        return int(ended) == 2

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
