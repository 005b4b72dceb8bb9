"""Where a job's image bytes come from: the upload blob in Redis, or a file under a data root."""

from __future__ import annotations

import os

from jobs import Job, JobMode, JobStore


class SourceError(Exception):
    """The image's bytes cannot be read; the message is the per-image error."""


def read_image_bytes(store: JobStore, job: Job, index: int, rel_path: str, max_bytes: int) -> bytes:
    if job.mode is JobMode.UPLOAD:
        data = store.blob(job.id, index)
        if data is None:
            raise SourceError("uploaded bytes are gone (job cancelled or expired)")
        return data
    return read_under_root(job.root, rel_path, max_bytes)


def read_under_root(root: str, rel_path: str, max_bytes: int) -> bytes:
    """Read root/rel_path, refusing anything that resolves outside root."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, rel_path))
    if os.path.commonpath([real_root, target]) != real_root:
        raise SourceError("path leads outside the data root; not read")
    try:
        # O_NOFOLLOW: a symlink swapped in after the check above is not followed.
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SourceError("file not found (moved or deleted after submission)") from None
    except OSError as exc:
        raise SourceError(f"cannot open file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise SourceError(f"file is {size:,} bytes, more than the limit of {max_bytes:,}")
        return handle.read(max_bytes + 1)
