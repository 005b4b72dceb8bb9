"""Turning an upload stream into a job: files assembled, bounded, and handed on in batches."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.settings import GatewaySettings
from podium.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable
from podium.core.jobs import ImageOutcome
from podium.stores.jobstore import HeldBack, JobStore

# Files are written to Redis in batches of this many, or fewer at the end.
FLUSH_FILES = 32
FLUSH_BYTES = 8 * 1024**2
_BACKPRESSURE_POLL_S = 0.05
# Redis's memory (INFO, parsed) is asked about at most this often per upload, or sooner once
# FLUSH_BYTES more arrived: once per 32-file flush it was a tenth of an upload's gateway time.
_MEMORY_CHECK_S = 0.2
# An upload's chunks hold at most this share of the files it may hold unprocessed: the
# stream goes on while a chunk is processed and the next ones fill.
UPLOAD_CHUNKS_IN_PENDING = 4


class FileChunk(NamedTuple):
    path: str
    data: bytes
    last: bool
    client_error: str = ""


# Longer paths are refused (Linux's PATH_MAX): every path is kept in Redis and echoed back.
MAX_PATH_BYTES = 4096


def check_relative_path(path: str) -> str:
    """A file path as sent by a client: relative, '/'-separated, no '..', no NUL, at most 4 KiB."""
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidArgument(f"file path {path[:80]!r}… is longer than {MAX_PATH_BYTES} bytes")
    if not path or "\x00" in path or path.startswith("/") or "\\" in path:
        raise InvalidArgument(f"file path {path!r} must be a non-empty relative path with '/' separators")
    normal = posixpath.normpath(path)
    if normal.startswith("..") or normal != path:
        raise InvalidArgument(f"file path {path!r} must be normalised and stay inside the folder")
    return path


def upload_lease(job_id: str) -> str:
    """The lease a gateway holds (and renews) while it receives the job's upload."""
    return f"upload:{job_id}"


class UploadJobEnded(FailedPrecondition):
    """The job ended (cancelled, failed, expired) while its files were still arriving."""


@dataclass
class UploadAssembler:
    """Receives file chunks of one job, keeps limits, and flushes complete files to Redis."""

    store: JobStore
    job_id: str
    settings: GatewaySettings
    pump: Callable[[str, HeldBack], object]  # (job id, partial: ChunkQueue.pump)
    count: int = 0  # files the job holds already (a resumed upload goes on after them)
    already: frozenset[str] = frozenset()  # their paths: sent again, they are skipped
    on_file: Callable[[], object] = lambda: None  # each file received (the upload renews its lease)
    # While backpressure holds the stream (no read), the upload is paused, not idle: this keeps
    # its idle watch and its lease alive, up to settings.upload_backpressure_max_s.
    on_wait: Callable[[], object] = lambda: None
    total_bytes: int = 0
    _seen: set[str] = field(default_factory=set)
    _skipping: bool = False
    _batch_paths: list[str] = field(default_factory=list)
    _batch_blobs: list[bytes | None] = field(default_factory=list)
    _batch_errors: list[tuple[int, str]] = field(default_factory=list)
    _batch_bytes: int = 0
    _current_path: str | None = None
    _current: bytearray | None = None
    _current_too_big: bool = False
    _current_error: str = ""
    _memory: tuple[float, int, float | None] = (float("-inf"), 0, None)  # (when, total_bytes then, fraction used)

    def add_chunk(self, chunk: FileChunk) -> None:
        path, data, last = chunk.path, chunk.data, chunk.last
        if self._skipping or (self._current_path is None and path in self.already):
            self._skipping = not last  # a resumed upload re-sent a file the job holds: ignore it
            return
        if self._current_path is None:
            self._start_file(path)
        elif path != self._current_path:
            raise InvalidArgument(
                f"file {self._current_path!r} was not finished (no chunk with last=true) before {path!r} began"
            )
        self.total_bytes += len(data) + len(path)  # paths are stored too: they count
        if self.total_bytes > self.settings.max_upload_bytes:
            raise ResourceExhausted(
                f"upload exceeds the gateway's limit of {self.settings.max_upload_bytes:,} bytes per job; "
                "split the folder into several jobs"
            )
        if not self._current_too_big:
            if len(self._current) + len(data) > self.settings.max_file_bytes:
                self._current_too_big, self._current = True, bytearray()
            else:
                self._current += data
        if chunk.client_error:
            self._current_error = f"the client could not read this file: {chunk.client_error[:500]}"
        if last:
            self._finish_file()

    def finish(self) -> None:
        if self._current_path is not None:
            raise InvalidArgument(f"the stream ended inside file {self._current_path!r} (no chunk with last=true)")
        self.flush()

    def _start_file(self, path: str) -> None:
        check_relative_path(path)
        if path in self._seen:
            raise InvalidArgument(f"file {path!r} was sent twice")
        if len(self._seen) >= self.settings.max_files_per_job:
            raise ResourceExhausted(
                f"a job may hold at most {self.settings.max_files_per_job:,} files; split the folder"
            )
        self._seen.add(path)
        self._current_path, self._current = path, bytearray()
        self._current_too_big, self._current_error = False, ""

    def _finish_file(self) -> None:
        index = self.count + len(self._batch_paths)
        self._batch_paths.append(self._current_path)
        error = self._current_error or (
            f"file is larger than the limit of {self.settings.max_file_bytes:,} bytes" if self._current_too_big else ""
        )
        if error:
            self._batch_blobs.append(None)
            self._batch_errors.append((index, error))
        else:
            self._batch_blobs.append(bytes(self._current))
            self._batch_bytes += len(self._current)
        self._current_path, self._current = None, None
        self.on_file()
        if len(self._batch_paths) >= FLUSH_FILES or self._batch_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._batch_paths:
            return
        self._wait_for_room()
        if not self.store.append_files(self.job_id, self.count, self._batch_paths, self._batch_blobs):
            self._check_still_open()  # raises: the job ended (cancelled, failed) during the upload
        for index, error in self._batch_errors:
            self.store.record(self.job_id, index, ImageOutcome(error=error))
        self.count += len(self._batch_paths)
        self._batch_paths, self._batch_blobs, self._batch_errors, self._batch_bytes = [], [], [], 0
        self.pump(self.job_id, HeldBack.NO)

    def _wait_for_room(self) -> None:
        # Backpressure: while the job holds too many unprocessed uploads (by count or bytes),
        # or Redis is above its high-water mark, stop reading the stream; gRPC flow control
        # then slows the client down. Redis memory stays bounded.
        started = time.monotonic()
        while held := self._held_back():
            self._check_still_open()
            # Files that fill no whole chunk yet go out as they are: room comes from processing,
            # and a chunk larger than the room left would never fill.
            self.pump(self.job_id, held)
            waited_s = time.monotonic() - started
            if waited_s > self.settings.upload_backpressure_max_s:
                raise Unavailable(
                    f"the workers have not taken this job's files for {waited_s:.0f} s "
                    "(is the inference server down?); the upload stops here",
                    hint="submit again with the same --job-key to resume once they are back",
                )
            self.on_wait()
            time.sleep(_BACKPRESSURE_POLL_S)
        self._check_still_open()

    def _held_back(self) -> HeldBack:
        count, nbytes = self.store.pending_uploads(self.job_id)
        if count >= self.settings.max_pending_uploads or nbytes >= self.settings.max_pending_upload_bytes:
            return HeldBack.BY_ITS_LIMITS
        used = self._memory_used()
        if used is not None and used >= self.settings.redis_high_water:
            return HeldBack.BY_REDIS_MEMORY
        return HeldBack.NO

    def _memory_used(self) -> float | None:
        when, at_bytes, used = self._memory
        now = time.monotonic()
        if now - when >= _MEMORY_CHECK_S or self.total_bytes - at_bytes >= FLUSH_BYTES:
            used = self.store.memory_used_fraction()
            self._memory = (now, self.total_bytes, used)
        return used

    def _check_still_open(self) -> None:
        state = self.store.state(self.job_id)
        if state is None or state.terminal:
            raise UploadJobEnded(f"job {self.job_id} ended during its upload ({state.value if state else 'expired'})")
