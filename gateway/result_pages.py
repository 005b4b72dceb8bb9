"""A job's recorded answers a page at a time, wherever they are: in Redis while their chunk
runs, in the job's result files once its chunk's file landed (a job with a results sink)."""

from __future__ import annotations

from collections.abc import Iterator

from podium.core.jobs import Job, JobState, RecordedOutcome
from podium.stores.jobstore import JobStore
from podium.stores.resultsink import ResultRow, Sink, chunk_rows, open_sink, rows_from

PAGE = 500

Page = list[tuple[str, RecordedOutcome | None]]


class ResultPages:
    """Reads one job's records for ``JobService.results``."""

    def __init__(self, store: JobStore, job: Job) -> None:
        self._store = store
        self._job_id = job.id
        self._sink: Sink | None = open_sink(job.results_url) if job.results_url else None
        self._layout = store.chunk_layout(job.id) if self._sink is not None else None

    def all_in_files(self, job: Job) -> bool:
        """Every answer of the job is in its files (a completed job with a results sink)."""
        return self._sink is not None and job.state is JobState.COMPLETED

    def rows_from(self, start: int) -> Iterator[ResultRow]:
        """Every row from ``start`` on, from the files (see ``all_in_files``)."""
        assert self._sink is not None
        return rows_from(self._sink, self._job_id, start)

    def carried_from(self, job: Job, start: int) -> Iterator[ResultRow]:
        """A delta job's rows carried over from its baseline (after its own images, in its
        files from the start), from ``start`` on: for a job whose own images are read from
        Redis (running, cancelled or failed; a completed one is read from its files whole)."""
        if self._sink is None or not job.unchanged:
            return iter(())
        return rows_from(self._sink, self._job_id, max(start, job.total))

    def page(self, job: Job, start: int) -> Page:
        """(path, record or None if unanswered) of the images from ``start`` that the job lists
        (fewer than a page: the rest of one chunk, with a results sink)."""
        if self._sink is None or self._layout is None:
            return self._store.recorded(self._job_id, start, PAGE)
        while True:
            # Chunks not dispatched yet may grow meanwhile: the chunk is the one meant only
            # if its records were read under the same layout.
            chunk = self._layout.chunk_of(start)
            first, size = self._layout.span(chunk)
            held = self._store.chunk_records(self._job_id, chunk, start, first + size - start)
            if held.layout == self._layout:
                break
            self._layout = held.layout
        if not (held.done or job.state.terminal):
            return held.records
        # Done: the file landed before the chunk was counted. A job that ended: its chunks
        # that landed have files (and no records left), the others records or nothing.
        rows = chunk_rows(self._sink, self._job_id, first, size) or {}
        return [
            (rows[index].path, rows[index].recorded) if index in rows else (path, record)
            for index, (path, record) in enumerate(held.records, start)
        ]
