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

# A file larger than this goes to Redis in pieces of this size (STAGE_LARGE_BLOB): in one
# command, 200 MB took 2.9-8.8 s with the append-only file's write, and every other client (a
# worker's lease renewal, a watch) waited up to 4.9 s for its answer (docs/reliability.md).
LARGE_BLOB_BYTES = 2 * 1024**2


@convert_redis_errors
class UploadFiles:
    """An upload's files as they arrive: paths and blobs appended while the job uploads."""

    _redis: redis.Redis
    _ttl_s: int

    @functools.cached_property
    def _append_files(self):
        return self._redis.register_script(scripts.APPEND_FILES)

    @functools.cached_property
    def _stage_large_blob(self):
        return self._redis.register_script(scripts.STAGE_LARGE_BLOB)

    @functools.cached_property
    def _finish_upload(self):
        return self._redis.register_script(scripts.FINISH_UPLOAD)

    def append_files(self, job_id: str, start: int, paths: Sequence[str], blobs: Sequence[bytes | None] = ()) -> bool:
        """Add files at indices start.. while the job uploads (its only writer does); false if it
        is not uploading any more (cancelled, failed), in which case nothing is written."""
        if not paths:
            return True
        keys = JobKeys(job_id).all
        pairs: list[object] = []
        large: list[int] = []
        for offset, blob in enumerate(blobs):
            if blob is None:
                continue
            if len(blob) > LARGE_BLOB_BYTES:
                if not self._stage(keys, start + offset, blob):
                    return False
                large.append(start + offset)
            else:
                pairs += [start + offset, blob]
        args = [time.time(), start + len(paths), len(paths), *paths, len(large), *large, *pairs]
        return int(self._append_files(keys=keys, args=args)) == 1

    def _stage(self, keys: list[str], index: int, blob: bytes) -> bool:
        """Write a large file's bytes in LARGE_BLOB_BYTES pieces; false if the job stopped uploading."""
        view = memoryview(blob)
        for offset in range(0, len(blob), LARGE_BLOB_BYTES):
            piece = view[offset : offset + LARGE_BLOB_BYTES]
            if not int(self._stage_large_blob(keys=keys, args=[index, offset, len(blob), piece])):
                return False
        return True

    def finish_upload(self, job_id: str) -> None:
        self._finish_upload(keys=JobKeys(job_id).ending, args=[time.time(), self._ttl_s])

    def pending_uploads(self, job_id: str) -> tuple[int, int]:
        """(images, bytes) uploaded to the job that no worker has finished yet."""
        keys = JobKeys(job_id)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.blobs)
            pipe.scard(keys.large_blobs)
            pipe.hget(keys.job, "pending_bytes")
            count, large, nbytes = pipe.execute()
        return int(count) + int(large), int(nbytes or 0)

    def blob(self, job_id: str, index: int) -> bytes | None:
        return self.blobs(job_id, [index])[0]

    def blobs(self, job_id: str, indexes: list[int]) -> list[bytes | None]:
        """The uploaded bytes of ``indexes`` (None: gone): one round trip; where some are not
        in the blobs hash, one more for the sizes of their large files, then their pieces."""
        if not indexes:
            return []
        keys = JobKeys(job_id)
        found = self._redis.hmget(keys.blobs, [str(i) for i in indexes])
        missing = [n for n, blob in enumerate(found) if blob is None]
        if missing:
            with self._redis.pipeline(transaction=False) as pipe:
                for n in missing:
                    pipe.strlen(keys.large_blob(indexes[n]))
                sizes = pipe.execute()
            for n, size in zip(missing, sizes, strict=True):
                if size:
                    found[n] = self._large_blob(keys.large_blob(indexes[n]), int(size))
        return found

    def _large_blob(self, key: str, size: int) -> bytes | None:
        """A large file's bytes, read in pieces as they were written (None: gone meanwhile)."""
        pieces = [self._redis.getrange(key, at, at + LARGE_BLOB_BYTES - 1) for at in range(0, size, LARGE_BLOB_BYTES)]
        data = b"".join(pieces)
        return data if len(data) == size else None
