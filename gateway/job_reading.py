"""Reading jobs: one job, the caller's list, a watch of its changes, its results in image order.

A role of ``JobService`` (``gateway.service``): every read goes through ``get``, the one
ownership check."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from gateway.access import Caller, checked_job_id
from gateway.result_pages import ResultPages
from gateway.settings import GatewaySettings
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound
from podium.core.jobs import ImageOutcome, ImageResult, Job, JobState
from podium.stores.jobstore import JobPage, JobStore
from podium.stores.resultsink import ResultRow, batches_from, ipc_bytes, open_sink

WATCH_POLL_S = 0.2
# Beyond any job (max_files_per_job is far less): Redis's list indices must not overflow.
MAX_START_INDEX = 2**40
CANCELLED_ERROR = "job cancelled before this image was processed"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# A job-list cursor as the store writes it: a job's creation time, repr() of a float.
_PAGE_TOKEN = re.compile(r"\d{1,20}(\.\d{1,20})?(e[+-]?\d{1,3})?")


def _result_of(row: ResultRow) -> ImageResult:
    record = row.recorded
    return ImageResult(row.index, row.path, record.outcome, record.sha256, record.finished_at)


def _unprocessed_reason(job: Job) -> str:
    if job.state is JobState.CANCELLED:
        return CANCELLED_ERROR
    return f"job failed before this image was processed: {job.error}"


class JobReading:
    """Reads of jobs the caller may see."""

    settings: GatewaySettings
    store: JobStore

    def files(self, job_id: str, caller: Caller) -> Iterator[str]:
        """Every path the job holds, in job order (what a resumed upload need not send)."""
        self.get(job_id, caller)
        return self.store.all_files(job_id)

    def get(self, job_id: str, caller: Caller) -> Job:
        job = self.store.get(checked_job_id(job_id))
        if job is None or not caller.may_see(job.owner):
            raise NotFound(f"no job {job_id} (unknown, or expired after {self.settings.result_ttl_s} s)")
        return job

    def list(
        self, caller: Caller, page_size: int = 0, page_token: str = "", state: JobState | None = None, name: str = ""
    ) -> JobPage:
        """The caller's jobs (an admin's: all), newest first, filtered by state and name."""
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be in 0..{MAX_PAGE_SIZE}")
        if page_token and not _PAGE_TOKEN.fullmatch(page_token):
            # float() would take "nan", "inf" and "1_0", which Redis then refuses (INTERNAL).
            raise InvalidArgument("page_token is not one this gateway issued")
        wanted = name.casefold()

        def visible(job: Job) -> bool:
            return (
                caller.may_see(job.owner)
                and (state is None or job.state is state)
                and (not wanted or wanted in job.name.casefold())
            )

        return self.store.list_jobs(page_size or DEFAULT_PAGE_SIZE, page_token, visible)

    def watch(self, job_id: str, caller: Caller, is_active: Callable[[], bool]) -> Iterator[Job]:
        """Yield the job at each change, ending after its first terminal state."""
        self.get(job_id, caller)
        last = None
        with self.store.end_signal(job_id) as ended:
            while is_active():
                job = self.get(job_id, caller)
                seen = (job.state, job.total, job.succeeded, job.failed, job.cached)
                if seen != last:
                    last = seen
                    yield job
                if job.state.terminal:
                    return
                ended.wait(WATCH_POLL_S)

    def results(
        self, job_id: str, caller: Caller, start: int, follow: bool, is_active: Callable[[], bool]
    ) -> Iterator[ImageResult]:
        """Finished images' results in image order from ``start``.

        Without ``follow``, unfinished images are skipped; with it, the stream waits for
        each in turn. Once a job has ended, every image has exactly one result: images
        that a cancel or failure left unprocessed get an error result."""
        if not 0 <= start <= MAX_START_INDEX:
            raise InvalidArgument(f"start_index must be in 0..{MAX_START_INDEX}")
        job = self.get(job_id, caller)
        with self.store.end_signal(job_id) as ended:
            yield from self._results(job, caller, start, follow, is_active, ended)

    def _results(
        self, job: Job, caller: Caller, start: int, follow: bool, is_active: Callable[[], bool], ended
    ) -> Iterator[ImageResult]:
        index = start
        pages = ResultPages(self.store, job)
        while is_active():
            if pages.all_in_files(job):
                yield from map(_result_of, pages.rows_from(index))
                return
            # The job is read before the page: if it had ended, the page is final.
            page = pages.page(job, index)
            waiting = False
            for path, record in page:
                if record is None:
                    if job.state.terminal:
                        yield ImageResult(index, path, ImageOutcome(error=_unprocessed_reason(job)))
                        index += 1
                    elif follow:
                        waiting = True
                        break
                    else:
                        index += 1
                    continue
                yield ImageResult(index, path, record.outcome, record.sha256, record.finished_at)
                index += 1
            if not waiting and page:
                continue
            if not waiting and not follow and not job.state.terminal and job.results_url:
                # An empty page of a job with a results sink: it may have completed meanwhile
                # (its paths and records leave Redis then): read on from its files.
                job = self.get(job.id, caller)
                if job.state.terminal:
                    continue
            if not waiting and (job.state.terminal or not follow):
                yield from map(_result_of, pages.carried_from(job, index))
                return
            ended.wait(WATCH_POLL_S)
            job = self.get(job.id, caller)

    def result_table(self, job_id: str, caller: Caller, start: int) -> Iterator[bytes]:
        """``results`` in bulk, for a job whose answers are all in its files: Arrow IPC streams
        of a batch of rows each (FailedPrecondition for any other job)."""
        if not 0 <= start <= MAX_START_INDEX:
            raise InvalidArgument(f"start_index must be in 0..{MAX_START_INDEX}")
        job = self.get(job_id, caller)
        if not (job.results_url and job.state is JobState.COMPLETED):
            raise FailedPrecondition(
                f"job {job_id} has not got all its answers in result files (it is {job.state.value})",
                hint="read its results with GetResults",
            )
        return (ipc_bytes(batch) for batch in batches_from(open_sink(job.results_url), job_id, start))
