"""Where a job's image bytes come from: the upload blob in Redis, a file under a data root,
or an object in a bucket the worker may read (its ``PODIUM_S3_BUCKETS``).

Path mode opens files component by component from the worker's own data root (its
``PODIUM_DATA_ROOTS``) down through the job's folder to the file, with ``openat`` and
``O_NOFOLLOW``, so a symlink, a ``..``, or the job's folder or one below it swapped for a
symlink after the job was submitted can never lead the read outside: there is no window
between a check and the open. ``OpenFolders`` keeps the folders a chunk reads from open
for the chunk's length, so that the walk (~0.2 CPU-ms, ten times the read) is paid once
per folder, not once per file.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from typing import Self

from podium.core.errors import InvalidArgument, PodiumError
from podium.core.jobs import Job, JobMode, S3Url, is_s3_url
from podium.core.settings import ServiceSettings
from podium.stores.jobstore import JobStore
from podium.stores.objectstore import ObjectStore


class SourceError(InvalidArgument):
    """The image's bytes cannot be read; the message is the per-image error."""


class OpenFolders:
    """Folders opened once, component by component from their data root, and kept open
    until ``close``; a folder past ``limit`` is opened for its file and closed again."""

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._fds: dict[tuple[str, ...], int] = {}
        self._real: dict[str, str] = {}
        self._lock = threading.Lock()

    def realpath(self, path: str) -> str:
        with self._lock:
            if path not in self._real:
                self._real[path] = os.path.realpath(path)
            return self._real[path]

    def open(self, data_root: str, names: list[str]) -> tuple[int, bool]:
        """(a descriptor of the folder, whether the caller must close it)."""
        key = (data_root, *names)
        with self._lock:
            if key in self._fds:
                return self._fds[key], False
        fd = _open_folder(data_root, names)
        with self._lock:
            if key in self._fds:  # another thread opened it meanwhile
                os.close(fd)
                return self._fds[key], False
            if len(self._fds) < self._limit:
                self._fds[key] = fd
                return fd, False
        return fd, True

    def close(self) -> None:
        with self._lock:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_image_bytes(
    store: JobStore,
    objects: ObjectStore,
    settings: ServiceSettings,
    job: Job,
    index: int,
    path: str,
    folders: OpenFolders | None = None,
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
        return read_file(settings.data_root_list(), path, settings.max_file_bytes, folders)
    return read_under_root(settings.data_root_list(), job.root, path, settings.max_file_bytes, folders)


def read_object(objects: ObjectStore, settings: ServiceSettings, url: str) -> bytes:
    """An s3:// object, streamed; a missing object, a refusal or a store still away after
    boto3's retries is this image's error."""
    try:
        return objects.read(S3Url.parse(url).allowed_in(settings.s3_bucket_list()), settings.max_file_bytes)
    except PodiumError as exc:
        raise SourceError(exc.message) from None


def read_file(data_roots: list[str], path: str, max_bytes: int, folders: OpenFolders | None = None) -> bytes:
    """An absolute path (a manifest line) read from the data root that holds it."""
    normal = os.path.normpath(path)
    realpath = folders.realpath if folders else os.path.realpath
    for root in data_roots:
        real = realpath(root)
        if normal.startswith(real.rstrip("/") + "/"):
            return read_under_root(data_roots, real, normal[len(real.rstrip("/")) + 1 :], max_bytes, folders)
    raise SourceError(f"outside this worker's data roots ({', '.join(data_roots) or 'none'}); not read")


def read_under_root(
    data_roots: list[str], job_root: str, rel_path: str, max_bytes: int, folders: OpenFolders | None = None
) -> bytes:
    """Read job_root/rel_path, never following a symlink or leaving the data root that holds job_root."""
    parts = rel_path.split("/")
    if not rel_path or rel_path.startswith("/") or _unsafe(parts):
        raise SourceError("path leads outside the data root; not read")
    data_root, inside = _split_at_data_root(data_roots, job_root, folders.realpath if folders else os.path.realpath)
    if folders is None:
        dir_fd, owned = _open_folder(data_root, inside + parts[:-1]), True
    else:
        dir_fd, owned = folders.open(data_root, inside + parts[:-1])
    try:
        # O_NONBLOCK: a FIFO planted in the folder must not hang the worker.
        fd = _open_at(dir_fd, parts[-1], os.O_RDONLY | os.O_NONBLOCK)
    finally:
        if owned:
            os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("not a regular file; not read")
        if info.st_size > max_bytes:
            raise SourceError(f"file is {info.st_size:,} bytes, more than the limit of {max_bytes:,}")
        return _read_all(fd, info.st_size, max_bytes)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int, max_bytes: int) -> bytes:
    """The file's bytes, asking for its size (a buffered ``read(max_bytes + 1)`` would
    allocate the whole limit first: ~0.1 ms a file); a file that grew past the limit while
    read fails."""
    parts, total = [], 0
    while True:
        part = os.read(fd, max(size - total, 0) + 1)  # + 1: sees the end (or growth) in one call
        if not part:
            break
        parts.append(part)
        total += len(part)
        if total > max_bytes:
            raise SourceError(f"file grew past the limit of {max_bytes:,} bytes while read")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _open_folder(data_root: str, names: list[str]) -> int:
    """A descriptor of data_root/names..., each component opened inside the last, O_NOFOLLOW."""
    try:
        fd = os.open(data_root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SourceError(f"the data root {data_root} cannot be opened: {exc.strerror}") from None
    try:
        for name in names:
            child = _open_at(fd, name, os.O_RDONLY | os.O_DIRECTORY)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unsafe(parts: list[str]) -> bool:
    return any(part in ("", ".", "..") for part in parts)


def _split_at_data_root(data_roots: list[str], job_root: str, realpath=os.path.realpath) -> tuple[str, list[str]]:
    """(the data root that holds job_root, the folders from it down to job_root)."""
    for root in data_roots:
        real = realpath(root)
        if job_root == real or job_root.startswith(real.rstrip("/") + "/"):
            inside = [part for part in job_root[len(real) :].split("/") if part]
            if not inside or not _unsafe(inside):
                return real, inside
    raise SourceError(
        f"the job's folder {job_root} is outside this worker's data roots ({', '.join(data_roots) or 'none'}); "
        "mount it at the same path as on the gateway and set PODIUM_DATA_ROOTS alike"
    )


def _open_at(dir_fd: int, name: str, flags: int) -> int:
    """Open name inside dir_fd without following a symlink (dir_fd stays open)."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SourceError("path leads outside the data root through a symbolic link; not read") from None
        if exc.errno == errno.ENOENT:
            raise SourceError("file not found (moved or deleted after submission)") from None
        raise SourceError(f"cannot open file: {exc.strerror}") from None
    return fd
