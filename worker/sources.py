"""Where a job's image bytes come from: the upload blob in Redis, or a file under a data root.

Path mode opens files component by component below the job's folder with ``openat`` and
``O_NOFOLLOW`` semantics, so a symlink, a ``..`` or a folder swapped for a symlink after
the job was submitted can never lead the read outside the folder: there is no window
between a check and the open.
"""

from __future__ import annotations

import errno
import os
import stat

from errors import InvalidArgument
from jobs import Job, JobMode
from jobstore import JobStore


class SourceError(InvalidArgument):
    """The image's bytes cannot be read; the message is the per-image error."""


def read_image_bytes(store: JobStore, job: Job, index: int, rel_path: str, max_bytes: int) -> bytes:
    if job.mode is JobMode.UPLOAD:
        data = store.blob(job.id, index)
        if data is None:
            raise SourceError("uploaded bytes are gone (job cancelled or expired)")
        return data
    return read_under_root(job.root, rel_path, max_bytes)


def read_under_root(root: str, rel_path: str, max_bytes: int) -> bytes:
    """Read root/rel_path, never following a symlink or leaving root."""
    parts = rel_path.split("/")
    if not rel_path or rel_path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SourceError("path leads outside the data root; not read")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SourceError(f"the job's folder cannot be opened: {exc.strerror}") from None
    try:
        for name in parts[:-1]:
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
