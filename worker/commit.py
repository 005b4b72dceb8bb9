"""A chunk's commit: for a job with a results sink, its answers land as one Parquet file
before Redis counts the chunk done, and the chunk that completes the job compacts its files.

The file is made from what Redis recorded (each image once, with its time and digest), so a
chunk delivered again after its file landed but before it was counted writes the same file
again. A run that recorded every image of its chunk makes it from what it stored (the same
values), without reading the records back. A sink that cannot take the file raises
SinkUnavailable: the chunk is tried again. A job deleted while its chunk ran leaves no file:
the chunk removes what it wrote once it sees the job gone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from podium.core.jobs import Job, RecordedOutcome
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def model_label(job: Job) -> str:
    """The ``model`` column: name:version (the name alone if no version was pinned)."""
    return f"{job.model_name}:{job.model_version}" if job.model_version else job.model_name


def commit_chunk(
    rt: Runtime, job: Job, chunk: int, made: Mapping[int, tuple[str, RecordedOutcome]] | None = None
) -> None:
    """``made``: every record of the chunk, as this run stored them (index -> (path, record)),
    when it recorded them all; otherwise the file is made from the records read back."""
    if not job.results_url:
        rt.store.complete_chunk(job.id, chunk)
        return
    # pyarrow: only in a process that writes files
    from podium.stores.resultsink import ResultRow, compact_quietly, remove_if_deleted, write_part

    sink = rt.sink(job.results_url)
    start, size = rt.store.chunk_layout(job.id).span(chunk)
    if made is not None:
        rows = [ResultRow(index, path, kept) for index, (path, kept) in made.items()]
    else:
        recorded = rt.store.recorded(job.id, start, size)
        rows = [ResultRow(start + i, path, rec) for i, (path, rec) in enumerate(recorded) if rec is not None]
    write_part(sink, job.id, start, rows, model_label(job))
    rt.sink_outage.answered()
    if rt.store.complete_chunk(job.id, chunk) and compact_quietly(sink, job.id):
        rt.store.compacted(job.id)
    remove_if_deleted(rt.store, sink, job.id)
