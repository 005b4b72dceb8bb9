"""A chunk's commit: for a job with a results sink, its answers land as one Parquet file
before Redis counts the chunk done, and the chunk that completes the job compacts its files.

The file is made from what Redis recorded (each image once, with its time and digest), so a
chunk delivered again after its file landed but before it was counted writes the same file
again. A sink that cannot take the file raises SinkUnavailable: the chunk is tried again.
"""

from __future__ import annotations

import logging

from podium.core.jobs import Job
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def model_label(job: Job) -> str:
    """The ``model`` column: name:version (the name alone if no version was pinned)."""
    return f"{job.model_name}:{job.model_version}" if job.model_version else job.model_name


def commit_chunk(rt: Runtime, job: Job, chunk: int) -> None:
    from podium.stores.resultsink import ResultRow, compact_quietly, write_part  # pyarrow: only where files are written

    if job.results_url:
        size = rt.store.chunk_size(job.id)
        start = chunk * size
        recorded = rt.store.recorded(job.id, start, size)
        rows = [ResultRow(start + i, path, record) for i, (path, record) in enumerate(recorded) if record is not None]
        write_part(rt.sink(job.results_url), job.id, start, rows, model_label(job))
        rt.sink_outage.answered()
    if rt.store.complete_chunk(job.id, chunk) and job.results_url and compact_quietly(rt.sink(job.results_url), job.id):
        rt.store.compacted(job.id)
