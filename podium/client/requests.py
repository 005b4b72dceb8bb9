"""What a submit sends: the job's options, then a manifest's lines or a folder's files in chunks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from podium.core.errors import InvalidArgument
from podium.core.jobs import JobOptions, walk_entries
from podium.core.proto import podium_pb2 as pb

UPLOAD_CHUNK_BYTES = 1024 * 1024
# Files smaller than a chunk go several to a message, up to these bounds (a message stays
# near a chunk's size, well under the gateway's PODIUM_MAX_MESSAGE_BYTES).
BATCH_BYTES = UPLOAD_CHUNK_BYTES
BATCH_FILES = 256


def job_options(options: JobOptions | None, fields: dict[str, object]) -> JobOptions:
    """``options``, or the options named as keywords (not both)."""
    if options is not None and fields:
        raise InvalidArgument("give a job's options as JobOptions or as keywords, not both")
    return options if options is not None else JobOptions.of(fields)


MANIFEST_BATCH = 1000


def manifest_requests(spec: pb.JobSpec, paths: Iterable[str]) -> Iterator[pb.ManifestRequest]:
    yield pb.ManifestRequest(spec=spec)
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) == MANIFEST_BATCH:
            yield pb.ManifestRequest(lines=pb.ManifestLines(paths=batch))
            batch = []
    if batch:
        yield pb.ManifestRequest(lines=pb.ManifestLines(paths=batch))


def upload_requests(
    folder: Path, spec: pb.JobSpec, on_file: Callable[[str, int], None] | None, held: set[str] = frozenset()
) -> Iterator[pb.UploadRequest]:
    """The spec, then every file of the folder the job does not hold yet (``held``): small
    files several to a message, larger ones in chunks of UPLOAD_CHUNK_BYTES."""
    yield pb.UploadRequest(spec=spec)
    batch = _Batch(on_file)
    for entry in walk_entries(folder):
        if entry.path in held:
            batch.report(entry.path, 0)
        elif entry.error:  # an unreadable or linked folder: it gets its error line
            yield from batch.add(pb.FileChunk(path=entry.path, last=True, client_error=entry.error))
        else:
            yield from _file_requests(folder, entry.path, batch)
    yield from batch.flush()


def chunk_requests(spec: pb.JobSpec, chunks: Iterable[pb.FileChunk]) -> Iterator[pb.UploadRequest]:
    """The spec, then files given as their chunks (each file's in a row, its last with ``last``),
    e.g. as a browser's upload arrives: a file that came whole travels with its neighbours,
    the pieces of a larger one each in a message of its own, in the stream's order."""
    yield pb.UploadRequest(spec=spec)
    batch = _Batch(None)
    inside = False  # a file's first piece has gone, its last not yet
    for chunk in chunks:
        if inside or not chunk.last:
            yield from batch.flush()
            yield pb.UploadRequest(file=chunk)
        else:
            yield from batch.add(chunk)
        inside = not chunk.last
    yield from batch.flush()


def _file_requests(folder: Path, rel: str, batch: _Batch) -> Iterator[pb.UploadRequest]:
    sent = 0
    try:
        with open(os.path.join(folder, rel), "rb") as handle:
            data = handle.read(UPLOAD_CHUNK_BYTES)
            if len(data) < UPLOAD_CHUNK_BYTES:  # the whole file: it travels with its neighbours
                yield from batch.add(pb.FileChunk(path=rel, data=data, last=True))
                return
            yield from batch.flush()  # the stream keeps the files' order
            while True:
                last = len(data) < UPLOAD_CHUNK_BYTES
                if data or last:
                    yield pb.UploadRequest(file=pb.FileChunk(path=rel, data=data, last=last))
                    sent += len(data)
                if last:
                    break
                data = handle.read(UPLOAD_CHUNK_BYTES)
    except OSError as exc:
        # The file still gets its line in the results, failed with this reason (after the
        # chunks already sent, if any: the gateway drops those).
        yield from batch.add(pb.FileChunk(path=rel, last=True, client_error=exc.strerror or str(exc)), sent)
        return
    batch.report(rel, sent)


class _Batch:
    """Whole small files gathered into one message (gRPC's cost is per message, ~0.15 ms each
    way in Python whatever its size: a third of a gateway's CPU per 15 KB file), each
    file's progress reported once its message was taken."""

    def __init__(self, on_file: Callable[[str, int], None] | None) -> None:
        self._on_file = on_file
        self._chunks: list[pb.FileChunk] = []
        self._sent: list[tuple[str, int]] = []
        self._bytes = 0

    def add(self, chunk: pb.FileChunk, sent: int | None = None) -> Iterator[pb.UploadRequest]:
        """``chunk`` (a file's last), sent with the next message; ``sent``: the file's bytes
        for progress (its data's, unless chunks went before)."""
        if self._chunks and (self._bytes + len(chunk.data) > BATCH_BYTES or len(self._chunks) >= BATCH_FILES):
            yield from self.flush()
        self._chunks.append(chunk)
        self._sent.append((chunk.path, len(chunk.data) if sent is None else sent))
        self._bytes += len(chunk.data)

    def flush(self) -> Iterator[pb.UploadRequest]:
        if not self._chunks:
            return
        if len(self._chunks) == 1:
            yield pb.UploadRequest(file=self._chunks[0])
        else:
            yield pb.UploadRequest(files=pb.FileChunks(chunks=self._chunks))
        for path, sent in self._sent:
            self.report(path, sent)
        self._chunks, self._sent, self._bytes = [], [], 0

    def report(self, path: str, sent: int) -> None:
        """A file's progress (``sent`` bytes), to the caller's ``on_file``."""
        if self._on_file is not None:
            self._on_file(path, sent)
