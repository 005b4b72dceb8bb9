"""Where a job's image bytes come from: the upload blob in Redis, a file under a data root,
or an object in a bucket the worker may read (its ``PODIUM_S3_BUCKETS``).

Path mode opens files component by component from the worker's own data root (its
``PODIUM_DATA_ROOTS``) down through the job's folder to the file, with ``openat`` and
``O_NOFOLLOW``, so a symlink, a ``..``, or the job's folder or one below it swapped for a
symlink after the job was submitted can never lead the read outside: there is no window
between a check and the open.
"""

from __future__ import annotations

import errno
import os
import stat

from errors import InvalidArgument, PodiumError
from jobs import Job, JobMode, S3Url, is_s3_url
from jobstore import JobStore
from objectstore import ObjectStore
from settings import ServiceSettings


class SourceError(InvalidArgument):
    """The image's bytes cannot be read; the message is the per-image error."""


def read_image_bytes(
    store: JobStore, objects: ObjectStore, settings: ServiceSettings, job: Job, index: int, path: str
) -> bytes:
    """Image ``index`` of the job, named ``path`` in it."""
    if job.mode is JobMode.UPLOAD:
        data = store.blob(job.id, index)
        if data is None:
            raise SourceError("uploaded bytes are gone (job cancelled or expired)")
        return data
    if job.mode is JobMode.S3:
        return read_object(objects, settings, job.root + path)
    if job.mode is JobMode.MANIFEST:
        if is_s3_url(path):
            return read_object(objects, settings, path)
        return read_file(settings.data_root_list(), path, settings.max_file_bytes)
    return read_under_root(settings.data_root_list(), job.root, path, settings.max_file_bytes)


def read_object(objects: ObjectStore, settings: ServiceSettings, url: str) -> bytes:
    """An s3:// object, streamed; a missing object, a refusal or a store still away after
    boto3's retries is this image's error."""
    try:
        return objects.read(S3Url.parse(url).allowed_in(settings.s3_bucket_list()), settings.max_file_bytes)
    except PodiumError as exc:
        raise SourceError(exc.message) from None


def read_file(data_roots: list[str], path: str, max_bytes: int) -> bytes:
    """An absolute path (a manifest line) read from the data root that holds it."""
    normal = os.path.normpath(path)
    for root in data_roots:
        real = os.path.realpath(root)
        if normal.startswith(real.rstrip("/") + "/"):
            return read_under_root(data_roots, real, normal[len(real.rstrip("/")) + 1 :], max_bytes)
    raise SourceError(f"outside this worker's data roots ({', '.join(data_roots) or 'none'}); not read")


def read_under_root(data_roots: list[str], job_root: str, rel_path: str, max_bytes: int) -> bytes:
    """Read job_root/rel_path, never following a symlink or leaving the data root that holds job_root."""
    parts = rel_path.split("/")
    if not rel_path or rel_path.startswith("/") or _unsafe(parts):
        raise SourceError("path leads outside the data root; not read")
    data_root, inside = _split_at_data_root(data_roots, job_root)
    try:
        fd = os.open(data_root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SourceError(f"the data root {data_root} cannot be opened: {exc.strerror}") from None
    try:
        for name in inside + parts[:-1]:
            fd = _open_at(fd, name, os.O_RDONLY | os.O_DIRECTORY)
        # O_NONBLOCK: a FIFO planted in the folder must not hang the worker.
        fd = _open_at(fd, parts[-1], os.O_RDONLY | os.O_NONBLOCK)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("not a regular file; not read")
        if info.st_size > max_bytes:
            raise SourceError(f"file is {info.st_size:,} bytes, more than the limit of {max_bytes:,}")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(max_bytes + 1)
    finally:
        os.close(fd)


def _unsafe(parts: list[str]) -> bool:
    return any(part in ("", ".", "..") for part in parts)


def _split_at_data_root(data_roots: list[str], job_root: str) -> tuple[str, list[str]]:
    """(the data root that holds job_root, the folders from it down to job_root)."""
    for root in data_roots:
        real = os.path.realpath(root)
        if job_root == real or job_root.startswith(real.rstrip("/") + "/"):
            inside = [part for part in job_root[len(real) :].split("/") if part]
            if not inside or not _unsafe(inside):
                return real, inside
    raise SourceError(
        f"the job's folder {job_root} is outside this worker's data roots ({', '.join(data_roots) or 'none'}); "
        "mount it at the same path as on the gateway and set PODIUM_DATA_ROOTS alike"
    )


def _open_at(dir_fd: int, name: str, flags: int) -> int:
    """Open name inside dir_fd without following a symlink. dir_fd is closed on success;
    on failure it stays open for the caller to close."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SourceError("path leads outside the data root through a symbolic link; not read") from None
        if exc.errno == errno.ENOENT:
            raise SourceError("file not found (moved or deleted after submission)") from None
        raise SourceError(f"cannot open file: {exc.strerror}") from None
    os.close(dir_fd)
    return fd
