"""A job's file list and each image's outcome: recorded exactly once, read back in order.

A role of ``JobStore`` (``store``), over the one Redis layout of ``schema``."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping, Sequence

import redis

from podium.core.jobs import ImageOutcome, RecordedOutcome
from podium.stores.jobstore import scripts
from podium.stores.jobstore.chunk_layout import FIELDS as LAYOUT_FIELDS
from podium.stores.jobstore.chunk_layout import ChunkLayout
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.records import ChunkRecords, Stamp
from podium.stores.jobstore.schema import JobKeys


@convert_redis_errors
class Outcomes:
    """A job's file list and each image's outcome: recorded exactly once, read back in order."""

    _redis: redis.Redis
    _ttl_s: int

    @functools.cached_property
    def _record(self):
        return self._redis.register_script(scripts.RECORD_RESULT)

    @functools.cached_property
    def _record_many(self):
        return self._redis.register_script(scripts.RECORD_RESULTS)

    def files(self, job_id: str, start: int, stop: int) -> list[str]:
        """Relative paths of images start..stop-1."""
        return [p.decode() for p in self._redis.lrange(JobKeys(job_id).paths, start, stop - 1)]

    def all_files(self, job_id: str, page: int = 10_000) -> Iterator[str]:
        """Every path of the job, in order, a page at a time."""
        start = 0
        while paths := self.files(job_id, start, start + page):
            yield from paths
            start += len(paths)

    def result_count(self, job_id: str) -> int:
        """How many images of the job have a stored outcome."""
        return int(self._redis.hlen(JobKeys(job_id).results))

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
            pipe.hmget(keys.job, LAYOUT_FIELDS)
            done, paths, raw, layout = pipe.execute()
        records = [(p.decode(), None if r is None else RecordedOutcome.decode(r)) for p, r in zip(paths, raw)]
        return ChunkRecords(bool(done), records, ChunkLayout.stored(*layout))

    def _raw(self, job_id: str, start: int, count: int) -> list[tuple[str, bytes | None]]:
        keys = JobKeys(job_id)
        paths = self._redis.lrange(keys.paths, start, start + count - 1)
        if not paths:
            return []
        raw = self._redis.hmget(keys.results, [str(start + i) for i in range(len(paths))])
        return [(p.decode(), r) for p, r in zip(paths, raw, strict=True)]

    def record(
        self, job_id: str, index: int, outcome: ImageOutcome, cached: bool = False, stamp: Stamp | None = None
    ) -> bool:
        """Store an image's outcome once; a repeat (redelivered chunk) is a no-op. ``cached``:
        the outcome is a duplicate's, from the result cache (counted in Job.cached). ``stamp``
        (jobs with a results sink): the record also keeps its time and the bytes' digest."""
        now = time.time()
        payload = outcome.encode(*_stamped(stamp, now))
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
        return self._record_all(job_id, results, stamps)[1]

    def record_kept(
        self,
        job_id: str,
        results: Sequence[tuple[int, ImageOutcome, bool]],
        stamps: Mapping[int, Stamp] | None = None,
    ) -> list[RecordedOutcome | None]:
        """``record_many``, answering with what this call stored for each index as ``recorded``
        would read it back (None: it was recorded before), so that a chunk's file is made
        without reading its records back or parsing them."""
        now, recorded = self._record_all(job_id, results, stamps)
        return [
            RecordedOutcome.of(outcome, *_stamped(_stamp_of(stamps, index), now)) if new else None
            for (index, outcome, _), new in zip(results, recorded, strict=True)
        ]

    def _record_all(
        self, job_id: str, results: Sequence[tuple[int, ImageOutcome, bool]], stamps: Mapping[int, Stamp] | None
    ) -> tuple[float, list[bool]]:
        """The records' time, and whether each index was recorded by this call."""
        now = time.time()
        args: list[object] = [now, self._ttl_s]
        for index, outcome, cached in results:
            payload = outcome.encode(*_stamped(_stamp_of(stamps, index), now))
            args += [index, payload, "1" if outcome.ok else "0", int(cached)]
        answers = self._record_many(keys=JobKeys(job_id).ending, args=args) if results else []
        return now, [int(answer) == 1 for answer in answers]


def _stamp_of(stamps: Mapping[int, Stamp] | None, index: int) -> Stamp | None:
    return stamps.get(index) if stamps is not None else None


def _stamped(stamp: Stamp | None, now: float) -> tuple[float | None, str | None]:
    """(finished_at, sha256) of a record: a stamped one keeps its time and digest, others neither."""
    return (now, stamp.sha256) if stamp else (None, None)
