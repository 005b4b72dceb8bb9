"""What a submit sends: the job's options, then a manifest's lines or a folder's files in chunks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from podium.core.errors import InvalidArgument
from podium.core.jobs import JobOptions, walk_entries
from podium.core.proto import podium_pb2 as pb

UPLOAD_CHUNK_BYTES = 1024 * 1024


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
    """The spec, then every file of the folder the job does not hold yet (``held``)."""
    yield pb.UploadRequest(spec=spec)
    for entry in walk_entries(folder):
        rel, sent = entry.path, 0
        if rel in held:
            if on_file is not None:
                on_file(rel, 0)
            continue
        if entry.error:  # an unreadable or linked folder: it gets its error line
            yield pb.UploadRequest(file=pb.FileChunk(path=rel, last=True, client_error=entry.error))
            continue
        try:
            with open(os.path.join(folder, rel), "rb") as handle:
                while True:
                    data = handle.read(UPLOAD_CHUNK_BYTES)
                    last = len(data) < UPLOAD_CHUNK_BYTES
                    if data or last:
                        yield pb.UploadRequest(file=pb.FileChunk(path=rel, data=data, last=last))
                        sent += len(data)
                    if last:
                        break
        except OSError as exc:
            # The file still gets its line in the results, failed with this reason.
            yield pb.UploadRequest(file=pb.FileChunk(path=rel, last=True, client_error=exc.strerror or str(exc)))
        if on_file is not None:
            on_file(rel, sent)
