"""An upload's files as they arrive: paths and blobs appended while the job uploads.

A role of ``JobStore`` (``store``), over the one Redis layout of ``schema``."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import redis

from podium.stores.jobstore import scripts
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import JobKeys


@convert_redis_errors
class UploadFiles:
    """An upload's files as they arrive: paths and blobs appended while the job uploads."""

    _redis: redis.Redis
    _ttl_s: int

    @functools.cached_property
    def _append_files(self):
        return self._redis.register_script(scripts.APPEND_FILES)

    @functools.cached_property
    def _finish_upload(self):
        return self._redis.register_script(scripts.FINISH_UPLOAD)

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

    def pending_uploads(self, job_id: str) -> tuple[int, int]:
        """(images, bytes) uploaded to the job that no worker has finished yet."""
        keys = JobKeys(job_id)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.blobs)
            pipe.hget(keys.job, "pending_bytes")
            count, nbytes = pipe.execute()
        return int(count), int(nbytes or 0)

    def blob(self, job_id: str, index: int) -> bytes | None:
        return self._redis.hget(JobKeys(job_id).blobs, str(index))

    def blobs(self, job_id: str, indexes: list[int]) -> list[bytes | None]:
        """The uploaded bytes of ``indexes`` in one round trip (None: gone)."""
        return self._redis.hmget(JobKeys(job_id).blobs, [str(i) for i in indexes]) if indexes else []
